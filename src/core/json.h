// The one JSON reader: every JSON text a user hands over (config.json, tokenizer.json, a safetensors
// header, facts/pairs JSONL lines, a run's own files on --resume) is parsed here, so a malformed file,
// a number that does not fit a double ("1e400") or a bad UTF-8 string gives one Error naming the file
// (and line), never nlohmann's exception text escaping as an internal error.
#pragma once
#include <nlohmann/json.hpp>

#include <string>

namespace mechscope {

// Parses `text`; `what` names it in the Error ("config.json", "facts.jsonl:12").
nlohmann::json parse_json(const std::string& text, const std::string& what);
nlohmann::json parse_json(const char* begin, const char* end, const std::string& what);
// Reads and parses a file; Error naming the path when it is missing, a directory or malformed.
nlohmann::json read_json_file(const std::string& path);

}  // namespace mechscope
