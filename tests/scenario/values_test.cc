#include "scenario/values.h"

#include <gtest/gtest.h>

#include <string>

namespace millstone::scenario {
namespace values_test {

TEST(VariableTableTest, InternAssignsDenseSlotsInOrder) {
  VariableTable table;
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.intern("token"), 0u);
  EXPECT_EQ(table.intern("users.email"), 1u);
  EXPECT_EQ(table.intern("x-id"), 2u);
  EXPECT_EQ(table.size(), 3u);
  EXPECT_EQ(table.name(0), "token");
  EXPECT_EQ(table.name(1), "users.email");
  EXPECT_EQ(table.name(2), "x-id");
}

TEST(VariableTableTest, InternIsIdempotent) {
  VariableTable table;
  const uint32_t a = table.intern("a");
  table.intern("b");
  EXPECT_EQ(table.intern("a"), a);
  EXPECT_EQ(table.size(), 2u);
}

TEST(VariableTableTest, FindReturnsSlotOrMinusOne) {
  VariableTable table;
  EXPECT_EQ(table.find("a"), -1);
  table.intern("a");
  table.intern("b");
  EXPECT_EQ(table.find("a"), 0);
  EXPECT_EQ(table.find("b"), 1);
  EXPECT_EQ(table.find("c"), -1);
  EXPECT_EQ(table.find(""), -1);
  EXPECT_EQ(table.size(), 2u);  // find never adds
}

TEST(VariableTableTest, NamesAreCaseSensitiveAndExact) {
  VariableTable table;
  table.intern("Token");
  EXPECT_EQ(table.find("token"), -1);
  EXPECT_EQ(table.find("Tok"), -1);
  EXPECT_EQ(table.find("Token "), -1);
}

TEST(VariableTableTest, KeysAreCopiesNotViews) {
  VariableTable table;
  {
    std::string temporary = "from.a.buffer";
    table.intern(temporary);
    temporary.assign("overwritten!!");
  }
  EXPECT_EQ(table.find("from.a.buffer"), 0);
  EXPECT_EQ(table.name(0), "from.a.buffer");
}

TEST(VariableTableTest, ManyNames) {
  VariableTable table;
  for (int i = 0; i < 5000; ++i)
    EXPECT_EQ(table.intern("col" + std::to_string(i)), uint32_t(i));
  for (int i = 0; i < 5000; ++i)
    EXPECT_EQ(table.find("col" + std::to_string(i)), i);
  // Copying a table (a plan is copied per worker) keeps lookups working.
  VariableTable copy = table;
  EXPECT_EQ(copy.find("col4999"), 4999);
  EXPECT_EQ(copy.name(4999), "col4999");
}

TEST(RenderContextTest, DefaultsAreEmpty) {
  RenderContext context;
  EXPECT_EQ(context.variables, nullptr);
  EXPECT_EQ(context.prng, nullptr);
  EXPECT_EQ(context.vu_id, 0u);
  EXPECT_EQ(context.iteration, 0u);
  EXPECT_EQ(context.worker_index, 0u);
  EXPECT_EQ(context.now_unix_ms, 0);
}

}  // namespace values_test
}  // namespace millstone::scenario
