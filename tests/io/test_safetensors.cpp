#include "io/safetensors.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstring>

#include "core/error.h"
#include "core/fs.h"
#include "test_util.h"

using mechscope::Error;
using namespace mechscope::io;

namespace {

const std::string kModel = mstest::fixture("gpt2/model/model.safetensors");

// A safetensors file from a literal header (no padding added) and data bytes.
std::string raw_file(const std::string& dir, const std::string& header, const std::string& data) {
  std::string path = dir + "/bad.safetensors";
  uint64_t n = header.size();
  std::string bytes(reinterpret_cast<const char*>(&n), 8);
  mechscope::write_file_atomic(path, bytes + header + data);
  return path;
}

// The message of the Error `f` throws (fails the test when it throws nothing).
template <typename F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a mechscope::Error";
  return "";
}

#define EXPECT_HAS(msg, part) EXPECT_NE((msg).find(part), std::string::npos) << "message: " << (msg)

std::string open_error(const std::string& path) {
  return error_of([&] { SafetensorsFile::open(path); });
}

}  // namespace

TEST(SafetensorsFile, OpensFixtureWithKnownNamesAndShapes) {
  auto f = SafetensorsFile::open(kModel);
  EXPECT_EQ(f->path(), kModel);
  EXPECT_EQ(f->tensors().size(), 28u);
  ASSERT_TRUE(f->has("transformer.wte.weight"));
  EXPECT_EQ(f->tensors().at("transformer.wte.weight").shape, (std::vector<int64_t>{50257, 32}));
  EXPECT_EQ(f->tensors().at("transformer.wpe.weight").shape, (std::vector<int64_t>{64, 32}));
  EXPECT_EQ(f->tensors().at("transformer.h.0.attn.c_attn.weight").dtype, "F32");
  EXPECT_EQ(f->metadata().at("format"), "pt");
  at::Tensor wte = f->get("transformer.wte.weight");
  EXPECT_EQ(wte.scalar_type(), at::kFloat);
  EXPECT_EQ(wte.sizes(), (std::vector<int64_t>{50257, 32}));
}

TEST(SafetensorsFile, GetIsZeroCopyAndOutlivesTheFile) {
  std::string bytes = mechscope::read_file(kModel);
  uint64_t header_len;
  std::memcpy(&header_len, bytes.data(), 8);
  auto f = SafetensorsFile::open(kModel);
  const TensorInfo& a = f->tensors().at("transformer.h.0.attn.c_attn.bias");
  const TensorInfo& b = f->tensors().at("transformer.wte.weight");
  at::Tensor ta = f->get("transformer.h.0.attn.c_attn.bias");
  at::Tensor tb = f->get("transformer.wte.weight");
  // Both views point into one mapping, at the header's offsets, and a second get returns the same memory.
  auto pa = static_cast<const char*>(ta.data_ptr());
  EXPECT_EQ(static_cast<const char*>(tb.data_ptr()) - pa, int64_t(b.begin) - int64_t(a.begin));
  EXPECT_EQ(f->get("transformer.wte.weight").data_ptr(), tb.data_ptr());
  EXPECT_EQ(std::memcmp(tb.data_ptr(), bytes.data() + 8 + header_len + b.begin, b.end - b.begin), 0);
  // Asking for the stored dtype is still zero-copy; another dtype is a copy.
  EXPECT_EQ(f->get("transformer.wte.weight", at::kFloat).data_ptr(), tb.data_ptr());
  EXPECT_NE(f->get("transformer.wte.weight", at::kDouble).data_ptr(), tb.data_ptr());

  at::Tensor expected = tb.clone();
  f.reset();  // the tensor keeps the mapping alive
  EXPECT_TRUE(at::equal(tb, expected));
}

TEST(SafetensorsFile, HalfAndBfloat16ConvertExactly) {
  std::string dir = mstest::tmp_dir("st-half");
  // Values representable in both formats, including F16's max and a subnormal-free small power of two.
  at::Tensor f16 = at::tensor({1.0f, -2.5f, 0.15625f, 65504.0f, 0.0f, -0.0009765625f}).to(at::kHalf);
  at::Tensor bf16 = at::tensor({1.0f, -2.5f, 0.15625f, 3.3895314e38f, 1e-30f}).to(at::kBFloat16);
  at::Tensor i8 = at::tensor({-128, 0, 127}, at::kChar);
  write_safetensors(dir + "/h.safetensors", {{"f16", f16}, {"bf16", bf16}, {"i8", i8}});
  auto f = SafetensorsFile::open(dir + "/h.safetensors");
  EXPECT_EQ(f->tensors().at("f16").dtype, "F16");
  EXPECT_EQ(f->tensors().at("bf16").dtype, "BF16");
  at::Tensor a = f->get("f16", at::kFloat);
  at::Tensor b = f->get("bf16", at::kFloat);
  EXPECT_EQ(a.scalar_type(), at::kFloat);
  std::vector<float> want_a = {1.0f, -2.5f, 0.15625f, 65504.0f, 0.0f, -0.0009765625f};
  for (size_t i = 0; i < want_a.size(); i++) EXPECT_EQ(a[i].item<float>(), want_a[i]);
  EXPECT_TRUE(at::equal(b, bf16.to(at::kFloat)));
  EXPECT_EQ(b[0].item<float>(), 1.0f);
  EXPECT_EQ(b[1].item<float>(), -2.5f);
  EXPECT_TRUE(at::equal(f->get("i8", at::kFloat), at::tensor({-128.0f, 0.0f, 127.0f})));
  EXPECT_TRUE(at::equal(f->get("f16", at::kDouble), f16.to(at::kDouble)));
}

TEST(WriteSafetensors, RoundTripsEveryDtype) {
  std::string dir = mstest::tmp_dir("st-roundtrip");
  at::Tensor base = at::arange(-12, 12, at::kDouble).reshape({2, 3, 4}) * 1.5;
  std::vector<std::pair<std::string, at::Tensor>> ts;
  for (auto t : {at::kDouble, at::kFloat, at::kHalf, at::kBFloat16, at::kLong, at::kInt, at::kShort, at::kChar})
    ts.emplace_back(c10::toString(t), base.to(t));
  ts.emplace_back("U8", (base.abs() * 4).to(at::kByte));
  ts.emplace_back("BOOL", base.gt(0));
  ts.emplace_back("transposed", base.to(at::kFloat).transpose(0, 2));  // not contiguous
  ts.emplace_back("empty", at::zeros({0, 5}, at::kHalf));
  ts.emplace_back("scalar", at::scalar_tensor(7.25, at::kFloat));
  write_safetensors(dir + "/rt.safetensors", ts, {{"format", "pt"}, {"note", "round trip"}});

  std::string bytes = mechscope::read_file(dir + "/rt.safetensors");
  uint64_t header_len;
  std::memcpy(&header_len, bytes.data(), 8);
  EXPECT_EQ(header_len % 8, 0u);  // padded with spaces, as the reference writer does

  auto f = SafetensorsFile::open(dir + "/rt.safetensors");
  EXPECT_EQ(f->metadata(), (std::map<std::string, std::string>{{"format", "pt"}, {"note", "round trip"}}));
  ASSERT_EQ(f->tensors().size(), ts.size());
  for (auto& [name, t] : ts) {
    SCOPED_TRACE(name);
    at::Tensor r = f->get(name);
    EXPECT_EQ(r.scalar_type(), t.scalar_type());
    EXPECT_EQ(r.sizes(), t.sizes());
    EXPECT_TRUE(at::equal(r, t));
    // Widest-first layout keeps every tensor aligned, so every read is zero-copy.
    if (r.numel() > 0) EXPECT_EQ(reinterpret_cast<uintptr_t>(r.data_ptr()) % r.element_size(), 0u);
  }
}

TEST(WriteSafetensors, RefusesDuplicateNamesAndIsAtomic) {
  std::string dir = mstest::tmp_dir("st-dup");
  at::Tensor t = at::ones({2});
  std::string msg = error_of([&] { write_safetensors(dir + "/d.safetensors", {{"a", t}, {"a", t}}); });
  EXPECT_HAS(msg, "'a'");
  EXPECT_HAS(msg, "twice");
  EXPECT_FALSE(mechscope::file_exists(dir + "/d.safetensors"));
  msg = error_of([&] { write_safetensors(dir + "/d.safetensors", {{"c", at::ones({2}, at::kComplexFloat)}}); });
  EXPECT_HAS(msg, "'c'");
}

TEST(SafetensorsFile, MisalignedTensorIsCopied) {
  std::string dir = mstest::tmp_dir("st-misaligned");
  // The data section starts 3 bytes past a multiple of 4, so this F32 tensor starts misaligned.
  std::string header = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  while ((8 + header.size()) % 4 != 3) header += ' ';
  float vals[2] = {1.5f, -3.0f};
  auto f = SafetensorsFile::open(raw_file(dir, header, std::string(reinterpret_cast<char*>(vals), 8)));
  at::Tensor x = f->get("x");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(x.data_ptr()) % 4, 0u);
  EXPECT_TRUE(at::equal(x, at::tensor({1.5f, -3.0f})));
}

TEST(SafetensorsFile, RejectsMissingEmptyAndDirectory) {
  std::string dir = mstest::tmp_dir("st-missing");
  std::string msg = open_error(dir + "/nope.safetensors");
  EXPECT_HAS(msg, dir + "/nope.safetensors");
  msg = open_error(dir);
  EXPECT_HAS(msg, "is a directory");
  mechscope::write_file_atomic(dir + "/empty.safetensors", "");
  msg = open_error(dir + "/empty.safetensors");
  EXPECT_HAS(msg, "empty.safetensors");
  EXPECT_HAS(msg, "empty");
  mechscope::write_file_atomic(dir + "/short.safetensors", "abc");
  EXPECT_HAS(open_error(dir + "/short.safetensors"), "only 3 bytes");
}

TEST(SafetensorsFile, RejectsHeaderLengthPastEnd) {
  std::string dir = mstest::tmp_dir("st-hlen");
  uint64_t n = 1000;
  mechscope::write_file_atomic(dir + "/h.safetensors", std::string(reinterpret_cast<char*>(&n), 8) + "{}");
  std::string msg = open_error(dir + "/h.safetensors");
  EXPECT_HAS(msg, "h.safetensors");
  EXPECT_HAS(msg, "header length 1000");
  EXPECT_HAS(msg, "past the end");
}

TEST(SafetensorsFile, RejectsHeaderThatIsNotJsonObject) {
  std::string dir = mstest::tmp_dir("st-json");
  std::string msg = open_error(raw_file(dir, "{\"x\": [1,", ""));
  EXPECT_HAS(msg, "bad.safetensors");
  EXPECT_HAS(msg, "not valid JSON");
  EXPECT_HAS(msg, "parse error");
  EXPECT_HAS(open_error(raw_file(dir, "[1, 2]", "")), "not a JSON object");
}

TEST(SafetensorsFile, RejectsTruncatedFile) {
  std::string dir = mstest::tmp_dir("st-trunc");
  std::string bytes = mechscope::read_file(kModel);
  mechscope::write_file_atomic(dir + "/cut.safetensors", bytes.substr(0, bytes.size() - 1000));
  std::string msg = open_error(dir + "/cut.safetensors");
  EXPECT_HAS(msg, dir + "/cut.safetensors");
  EXPECT_HAS(msg, "outside the data section");
  EXPECT_HAS(msg, "tensor '");
  mechscope::write_file_atomic(dir + "/cut2.safetensors", bytes.substr(0, 100));  // cut in the header
  EXPECT_HAS(open_error(dir + "/cut2.safetensors"), "past the end");
}

TEST(SafetensorsFile, RejectsRangeOutsideData) {
  std::string dir = mstest::tmp_dir("st-range");
  std::string msg =
      open_error(raw_file(dir, R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})", std::string(16, '\0')));
  EXPECT_HAS(msg, "tensor 'w'");
  EXPECT_HAS(msg, "data_offsets [8, 24] lie outside the data section (16 bytes");
}

TEST(SafetensorsFile, RejectsOverlappingRanges) {
  std::string dir = mstest::tmp_dir("st-overlap");
  std::string msg = open_error(raw_file(dir,
                                        R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                        R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                        std::string(16, '\0')));
  EXPECT_HAS(msg, "'a'");
  EXPECT_HAS(msg, "'b'");
  EXPECT_HAS(msg, "overlapping");
}

TEST(SafetensorsFile, RejectsBadEntries) {
  std::string dir = mstest::tmp_dir("st-entries");
  std::string data(16, '\0');
  std::string msg = open_error(raw_file(dir, R"({"q":{"dtype":"F7","shape":[2],"data_offsets":[0,8]}})", data));
  EXPECT_HAS(msg, "tensor 'q'");
  EXPECT_HAS(msg, "unknown or unsupported dtype 'F7'");
  EXPECT_HAS(msg, "BF16");

  msg = open_error(raw_file(dir, R"({"q":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data));
  EXPECT_HAS(msg, "tensor 'q'");
  EXPECT_HAS(msg, "needs 12 bytes but data_offsets [0, 8] hold 8");

  // A product that wraps around 2^64 must not pass for 8 bytes.
  msg = open_error(raw_file(
      dir, R"({"q":{"dtype":"F32","shape":[4611686018427387904,4611686018427387904,2],"data_offsets":[0,8]}})", data));
  EXPECT_HAS(msg, "over 2^64");

  msg = open_error(raw_file(dir, R"({"q":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", data));
  EXPECT_HAS(msg, "non-negative");
  msg = open_error(raw_file(dir, R"({"q":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", data));
  EXPECT_HAS(msg, "begin > end");
  msg = open_error(raw_file(dir, R"({"q":{"dtype":"F32","shape":[2]}})", data));
  EXPECT_HAS(msg, "data_offsets");
  msg = open_error(raw_file(dir, R"({"q":{"shape":[2],"data_offsets":[0,8]}})", data));
  EXPECT_HAS(msg, "dtype");
  msg = open_error(raw_file(dir, R"({"__metadata__":{"format":1}})", data));
  EXPECT_HAS(msg, "__metadata__");
  EXPECT_HAS(msg, "'format'");
}

TEST(SafetensorsFile, GetMissingTensorNamesIt) {
  auto f = SafetensorsFile::open(kModel);
  std::string msg = error_of([&] { f->get("transformer.h.9.mlp.c_fc.weight"); });
  EXPECT_HAS(msg, kModel);
  EXPECT_HAS(msg, "no tensor 'transformer.h.9.mlp.c_fc.weight'");
}
