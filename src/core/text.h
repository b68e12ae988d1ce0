// The one list splitter and trim of the library: every comma-separated option value (--targets,
// --kinds, --formats, head specs, token-set names) is cut here, so all lists treat spaces alike.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace mechscope {

// "a,,b" -> {"a", "", "b"}; "" -> {""}: every field, empty ones included (callers that must refuse
// empty items see them).
std::vector<std::string> split(std::string_view s, char sep);
// Without leading and trailing ASCII white space (space, \t, \n, \v, \f, \r).
std::string trim(std::string_view s);
// The items of a list such as "png, svg,pdf" or "all mlp": split at `seps`, each trimmed, empty
// ones dropped, in order (duplicates kept: callers say what a duplicate means).
std::vector<std::string> list_items(std::string_view s, std::string_view seps = ",");

}  // namespace mechscope
