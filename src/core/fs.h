// File helpers. Every output goes through write_file_atomic: written to "<path>.tmp.<pid>" and renamed,
// so a killed run never leaves a half-written file under the final name.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace mechscope {

std::string read_file(const std::string& path);  // Error naming the path when unreadable
bool file_exists(const std::string& path);
bool dir_exists(const std::string& path);
void make_dirs(const std::string& path);  // mkdir -p; Error when it cannot
std::string join_path(const std::string& a, const std::string& b);

void write_file_atomic(const std::string& path, const std::string& bytes);
// Streams into the temporary file through `write` (called with the open FILE*), then renames.
void write_file_atomic(const std::string& path, const std::function<void(std::FILE*)>& write);

}  // namespace mechscope
