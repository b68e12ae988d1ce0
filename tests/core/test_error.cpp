// core/error.h: library messages name options by field; a front end's namer turns them into its flags.
#include <gtest/gtest.h>

#include <functional>

#include "core/error.h"

using namespace mechscope;

namespace {
std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}
std::string as_flag(const std::string& field) { return "--" + field + "-flag"; }
}  // namespace

TEST(Error, OptionReadsAsItsFieldWithoutANamer) {
  set_option_namer(nullptr);
  EXPECT_EQ(message_of([] { fail(option("d_model"), " 64 is not divisible by ", option("n_heads"), " 3"); }),
            "d_model 64 is not divisible by n_heads 3");
}

TEST(Error, ANamerNamesEveryOptionOfTheMessage) {
  set_option_namer(&as_flag);
  EXPECT_EQ(message_of([] { fail(option("samples"), " must be >= 1, got 0 (see ", option("samples"), ")"); }),
            "--samples-flag must be >= 1, got 0 (see --samples-flag)");
  set_option_namer(nullptr);
}

TEST(Error, RawKeepsTheOptionsForAHandlerThatAddsContext) {
  set_option_namer(nullptr);
  try {
    try {
      fail(option("kind"), ": expected zero, mean or resample");
    } catch (const Error& inner) {
      set_option_namer(&as_flag);  // the outer message is named when it is made
      fail("config.json: ", inner.raw());
    }
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "config.json: --kind-flag: expected zero, mean or resample");
  }
  set_option_namer(nullptr);
}

TEST(Error, TextWithoutMarkersOrWithAnUnclosedOneIsKept) {
  EXPECT_EQ(name_options("plain text", as_flag), "plain text");
  EXPECT_EQ(name_options("a \x1e"
                         "open",
                         as_flag),
            "a \x1e"
            "open");
  EXPECT_EQ(name_options("", as_flag), "");
}
