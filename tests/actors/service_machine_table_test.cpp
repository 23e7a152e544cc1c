// The compile-time checks both service machines rely on (service_machine_table.hpp):
// a table missing a pair, splitting a pair, guarding its last row, or with an
// "ignored" row that does something is refused; lookup takes the first row whose
// guard holds. A small two-state machine of its own, not the real tables.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "actors/service_machine_table.hpp"

using namespace actors;

namespace {

enum class St : std::uint8_t { a, b };
enum class Ev : std::uint8_t { x, y };
enum class Gd : std::uint8_t { none, flag };
enum class Act : std::uint8_t { one, two };
using Acts = table::Actions<Act, 2>;

struct Row {
  St from;
  Ev event;
  Gd guard;
  St next;
  Acts actions;
  bool ignored;
  constexpr bool inert() const { return next == from && actions.size == 0; }
};

constexpr Row kGood[] = {
    {St::a, Ev::x, Gd::flag, St::b, {{Act::one, Act::one}, 1}, false},
    {St::a, Ev::x, Gd::none, St::a, {{Act::two, Act::one}, 2}, false},
    {St::a, Ev::y, Gd::none, St::a, {}, true},
    {St::b, Ev::x, Gd::none, St::a, {}, false},
    {St::b, Ev::y, Gd::none, St::b, {}, true},
};
static_assert(table::well_formed<2, 2>(kGood));

constexpr Row kMissingPair[] = {
    {St::a, Ev::x, Gd::none, St::b, {}, false},
    {St::a, Ev::y, Gd::none, St::a, {}, true},
    {St::b, Ev::x, Gd::none, St::a, {}, false},
};
static_assert(!table::well_formed<2, 2>(kMissingPair));

constexpr Row kSplitPair[] = {
    {St::a, Ev::x, Gd::flag, St::b, {}, false},
    {St::a, Ev::y, Gd::none, St::a, {}, true},
    {St::a, Ev::x, Gd::none, St::a, {}, false},
    {St::b, Ev::x, Gd::none, St::a, {}, false},
    {St::b, Ev::y, Gd::none, St::b, {}, true},
};
static_assert(!table::well_formed<2, 2>(kSplitPair));

constexpr Row kLastRowGuarded[] = {
    {St::a, Ev::x, Gd::flag, St::b, {}, false},
    {St::a, Ev::y, Gd::none, St::a, {}, true},
    {St::b, Ev::x, Gd::none, St::a, {}, false},
    {St::b, Ev::y, Gd::none, St::b, {}, true},
};
static_assert(!table::well_formed<2, 2>(kLastRowGuarded));

constexpr Row kUnreachableRow[] = {
    {St::a, Ev::x, Gd::none, St::b, {}, false},
    {St::a, Ev::x, Gd::none, St::a, {}, false},  // after an unguarded row: never taken
    {St::a, Ev::y, Gd::none, St::a, {}, true},
    {St::b, Ev::x, Gd::none, St::a, {}, false},
    {St::b, Ev::y, Gd::none, St::b, {}, true},
};
static_assert(!table::well_formed<2, 2>(kUnreachableRow));

constexpr Row kIgnoredButActs[] = {
    {St::a, Ev::x, Gd::none, St::b, {}, false},
    {St::a, Ev::y, Gd::none, St::a, {{Act::one, Act::one}, 1}, true},
    {St::b, Ev::x, Gd::none, St::a, {}, false},
    {St::b, Ev::y, Gd::none, St::b, {}, true},
};
static_assert(!table::well_formed<2, 2>(kIgnoredButActs));

constexpr auto kFirst = table::first_rows<2, 2>(kGood);
static_assert(kFirst[0] == 0 && kFirst[1] == 2 && kFirst[2] == 3 && kFirst[3] == 4);

TEST(MachineTable, LookupTakesTheFirstRowWhoseGuardHolds) {
  auto guard_is = [](bool flag) { return [flag](Gd g) { return g == Gd::none || flag; }; };
  EXPECT_EQ(table::lookup<2>(kGood, kFirst, St::a, Ev::x, guard_is(true)).next, St::b);
  const Row& fallback = table::lookup<2>(kGood, kFirst, St::a, Ev::x, guard_is(false));
  EXPECT_EQ(fallback.next, St::a);
  EXPECT_EQ(fallback.actions.to_vector(), (std::vector<Act>{Act::two, Act::one}));
  EXPECT_TRUE(table::lookup<2>(kGood, kFirst, St::b, Ev::y, guard_is(false)).ignored);
}

}  // namespace
