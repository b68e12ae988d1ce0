// Claiming an output place for one run (issue 17), so that whatever happens, what is on disk is either
// whole and this run's, or clearly marked as not done, and nothing mechscope did not make is replaced.
//
// A folder is claimed once per process (RunOutput claims it if the command did not earlier):
//  - refused when a file, FIFO, device or socket stands there;
//  - created when missing (and removed again when the run fails before writing anything);
//  - locked (<dir>/.mechscope.lock, flock): a second run into it exits 2 naming the holder's pid;
//  - temporaries of dead processes in it removed;
//  - refused when it holds files and was not made by mechscope, unless --overwrite (made_by_mechscope).
// Staged (single-result commands): everything is written into <dir>/.run.tmp.<pid>/ and moved into
// place at the end (commit), so a failed or interrupted run leaves the earlier results as they were.
// In place (batch commands that --resume: locate, train): manifest.json says "status": "running"
// from the start, "complete" at the end, "failed: <why>" when the run fails and "interrupted (SIGINT)"
// when a signal ends it; a run that fails or is interrupted before writing anything over a complete
// result puts that result's manifest back byte for byte.
#pragma once
#include <string>

namespace mechscope::report {

enum class OutputMode { Staged, InPlace };

// --overwrite, for every command (the CLI sets it once the flags are parsed).
void set_overwrite(bool on);
bool overwrite();

// Claims `dir` and returns where to write: the staging folder (Staged) or `dir` itself (InPlace).
// Claiming a folder again returns the first claim's place.
std::string claim_output_dir(const std::string& dir, const std::string& command, OutputMode mode = OutputMode::Staged);
// Staged: moves everything written into the staging folder into `dir` (manifest.json last), after
// checking that nothing in the way is a folder or a special file, and removes the files of the
// earlier run's manifest that this run did not write. In place: marks the claim finished (the caller
// wrote manifest.json with status "complete").
void commit_output_dir(const std::string& dir);
// The status an in-place folder's manifest had when it was claimed ("" when it had none).
std::string previous_status(const std::string& dir);

// A single output file (`run --out FILE`): refused when a folder or a special file stands there, or
// a regular file mechscope did not write (a safetensors file whose metadata "format" starts with
// "mechscope"), unless --overwrite; stale temporaries beside it are removed, missing parents created.
void claim_output_file(const std::string& path);

// True when `dir` holds a manifest.json written by mechscope ("tool": "mechscope", or the
// "versions" of older manifests), the records of a locate or train run, or the kg.json of kg generate.
bool made_by_mechscope(const std::string& dir);

// The end of a command (main): in-place folders of a successful run get "complete" where their
// command wrote no manifest of its own, those of a failed run "failed: <why>" (or, when the folder
// held a complete result and the run wrote no file, that result's manifest byte for byte again);
// staging folders and other temporaries are removed.
void close_outputs(bool ok, const std::string& why = "");
// `message` with each staging folder's path replaced by its output folder's: what the user gave.
std::string public_paths(std::string message);

}  // namespace mechscope::report
