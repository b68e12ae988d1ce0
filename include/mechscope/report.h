// mechscope's public C++ interface, part 5: figures and run folders.
//
//   mechscope::report::RunOutput out("results", argc, argv, "my-analysis", "What it shows");
//   out.save_figure(fig);      // results/<fig.id>.png (+ .svg/.pdf per out.formats) and its HTML twin
//   out.finish();              // index.html, then manifest.json, then everything moved into place
//
// Contract: a run folder is whole or absent. RunOutput claims the folder (a lock: a second process
// writing into it gets mechscope::Error naming the first's pid; a folder mechscope did not write is
// refused), writes into a staging folder, and finish() moves everything into place, manifest.json
// last; a run that throws before finish() leaves what the folder held before. Figures are validated
// (report::validate) and rendered by cairo (static) and plotly (index.html) from one description.
#pragma once

#include "report/figure.h"
#include "report/render.h"
#include "report/run.h"
