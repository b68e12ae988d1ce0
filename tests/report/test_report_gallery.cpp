#include <gtest/gtest.h>

#include <dirent.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <set>
#include <sstream>

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

}  // namespace

TEST(Gallery, WritesEveryFigureInEveryFormatWithIndexAndManifest) {
  std::string dir = mstest::tmp_dir("gallery");
  auto r = mstest::run_cli({"gallery", "--out", dir, "--formats", "png,svg,pdf", "--dpi", "80"});
  ASSERT_EQ(r.code, 0) << r.err;
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
  auto r = mstest::run_cli({"gallery", "--out", dir, "--formats", "png,gif"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("gif"), std::string::npos) << r.err;
  auto r2 = mstest::run_cli({"gallery"});
  EXPECT_EQ(r2.code, 2);
  EXPECT_NE(r2.err.find("--out"), std::string::npos) << r2.err;
}
