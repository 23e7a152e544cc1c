#pragma once
// The shape both of a service's machines share (ServiceMachine, CustodyMachine):
// constexpr rows of (state, event, guard) -> (next, actions), the rows of one pair
// together and tried in order, the last one unguarded. The checks run at compile
// time, so a table with a missing pair, a split pair or a pair that may match no
// row does not build.
#include <algorithm>
#include <array>
#include <cstddef>
#include <vector>

namespace actors::table {

// A row's actions, in order, without a heap (rows are constexpr).
template <typename Action, std::size_t Max>
struct Actions {
  std::array<Action, Max> list{};
  std::size_t size = 0;
  std::vector<Action> to_vector() const {
    return {list.begin(), list.begin() + static_cast<std::ptrdiff_t>(size)};
  }
};

template <std::size_t Events, typename State, typename Event>
constexpr std::size_t pair_of(State s, Event e) {
  return static_cast<std::size_t>(s) * Events + static_cast<std::size_t>(e);
}

// Every pair has rows, they are together, exactly the last is unguarded (a lookup
// always ends on a row), and an "ignored" row is alone and inert (Row::inert()).
template <std::size_t States, std::size_t Events, typename Row, std::size_t N>
constexpr bool well_formed(const Row (&rows)[N]) {
  std::array<std::size_t, States * Events> count{};
  std::size_t prev = States * Events;
  for (std::size_t i = 0; i < N; ++i) {
    const Row& r = rows[i];
    const std::size_t p = pair_of<Events>(r.from, r.event);
    if (p >= States * Events) return false;
    if (p != prev && count[p] != 0) return false;
    ++count[p];
    const bool last = i + 1 == N || pair_of<Events>(rows[i + 1].from, rows[i + 1].event) != p;
    if ((r.guard == decltype(r.guard)::none) != last) return false;
    if (r.ignored && (count[p] != 1 || !r.inert())) return false;
    prev = p;
  }
  return std::all_of(count.begin(), count.end(), [](std::size_t n) { return n > 0; });
}

// Where each pair's rows begin (valid once well_formed() holds).
template <std::size_t States, std::size_t Events, typename Row, std::size_t N>
constexpr std::array<std::size_t, States * Events> first_rows(const Row (&rows)[N]) {
  std::array<std::size_t, States * Events> first{};
  for (std::size_t i = N; i-- > 0;) first[pair_of<Events>(rows[i].from, rows[i].event)] = i;
  return first;
}

// The row that applies: the first of the pair whose guard holds.
template <std::size_t Events, typename Row, std::size_t N, std::size_t P, typename State, typename Event,
          typename Holds>
const Row& lookup(const Row (&rows)[N], const std::array<std::size_t, P>& first, State s, Event e, Holds holds) {
  std::size_t i = first[pair_of<Events>(s, e)];
  while (!holds(rows[i].guard)) ++i;  // well_formed(): the pair's last row is unguarded
  return rows[i];
}

}  // namespace actors::table
