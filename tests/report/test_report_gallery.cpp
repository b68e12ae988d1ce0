#include <gtest/gtest.h>

#include <dirent.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <set>
#include <sstream>

#include "core/source_dir.h"  // MECHSCOPE_GALLERY
#include "png_util.h"
#include "test_util.h"

namespace {

std::set<std::string> list_dir(const std::string& dir) {
  std::set<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") out.insert(n);
  }
  closedir(d);
  return out;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Runs the developer tool build/mechscope-gallery (not a command of the mechscope binary).
mstest::RunResult run_gallery(const std::vector<std::string>& args) {
  std::string cmd = MECHSCOPE_GALLERY;
  for (auto& a : args) cmd += " '" + a + "'";
  return mstest::run_shell(cmd + " 2>&1 </dev/null");
}

}  // namespace

TEST(Gallery, WritesEveryFigureInEveryFormatWithIndexAndManifest) {
  std::string dir = mstest::tmp_dir("gallery");
  auto r = run_gallery({"--out", dir, "--formats", "png,svg,pdf", "--dpi", "80"});
  ASSERT_EQ(r.code, 0) << r.out;
  auto files = list_dir(dir);
  for (auto& f : files) EXPECT_EQ(f.find(".tmp"), std::string::npos) << f;
  ASSERT_TRUE(files.count("index.html"));
  ASSERT_TRUE(files.count("manifest.json"));
  size_t png = 0;
  for (auto& f : files)
    if (f.size() > 4 && f.substr(f.size() - 4) == ".png") {
      png++;
      std::string stem = f.substr(0, f.size() - 4);
      EXPECT_TRUE(files.count(stem + ".svg")) << stem;
      EXPECT_TRUE(files.count(stem + ".pdf")) << stem;
      mstest::Image img = mstest::decode_png(slurp(dir + "/" + f));
      EXPECT_GT(img.w, 100) << f;
      EXPECT_GT(mstest::luminance_std(img), 10.0) << f;
    }
  EXPECT_GE(png, 12u);
  auto m = nlohmann::json::parse(slurp(dir + "/manifest.json"));
  EXPECT_EQ(m["command"], "gallery");
  EXPECT_EQ(m["files"].size(), png * 3 + 1);
}

TEST(Gallery, BadFlagsAreExit2WithAMessage) {
  std::string dir = mstest::tmp_dir("gallery-bad");
  auto r = run_gallery({"--out", dir, "--formats", "png,gif"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("mechscope-gallery: error: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("gif"), std::string::npos) << r.out;
  auto r2 = run_gallery({});
  EXPECT_EQ(r2.code, 2);
  EXPECT_NE(r2.out.find("--out"), std::string::npos) << r2.out;
  // Not a command of the user's binary any more.
  auto r3 = mstest::run_cli({"gallery", "--out", dir});
  EXPECT_EQ(r3.code, 2);
  EXPECT_NE(r3.err.find("unknown command 'gallery'"), std::string::npos) << r3.err;
}
