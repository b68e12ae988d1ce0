// Everything public: see each header's contract.
#pragma once

#include "mechscope/causal_trace.h"
#include "mechscope/hooks.h"
#include "mechscope/model.h"
#include "mechscope/patching.h"
#include "mechscope/report.h"
