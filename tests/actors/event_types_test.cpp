// The typed list of event kinds (actors/event_type.hpp) against the reference that users
// read (docs/api.md, "## Event kinds"): the same names, each once. A kind added in code
// without documentation, or documented but never recorded, fails here.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "actors/event_type.hpp"

namespace {

std::string g_doc_path;

// The first column's `name` of every table row under the "## Event kinds" heading.
std::vector<std::string> documented_kinds(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << "cannot read " << path;
  std::vector<std::string> kinds;
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    if (line.rfind("## ", 0) == 0) {
      inside = line == "## Event kinds";
      continue;
    }
    if (!inside || line.rfind("| `", 0) != 0) continue;
    const std::size_t end = line.find('`', 3);
    if (end != std::string::npos) kinds.push_back(line.substr(3, end - 3));
  }
  return kinds;
}

TEST(EventTypes, NamesAreUnique) {
  std::set<std::string_view> seen;
  for (actors::EventType t : actors::kAllEventTypes)
    EXPECT_TRUE(seen.insert(actors::to_string(t)).second) << actors::to_string(t);
}

TEST(EventTypes, ListMatchesTheReference) {
  const std::vector<std::string> documented = documented_kinds(g_doc_path);
  ASSERT_FALSE(documented.empty()) << g_doc_path << " has no \"## Event kinds\" table";
  std::set<std::string> doc_set;
  for (const auto& k : documented) EXPECT_TRUE(doc_set.insert(k).second) << "documented twice: " << k;
  std::set<std::string> code_set;
  for (actors::EventType t : actors::kAllEventTypes) code_set.insert(std::string(actors::to_string(t)));
  for (const auto& k : code_set) EXPECT_TRUE(doc_set.count(k)) << "recorded but not documented: " << k;
  for (const auto& k : doc_set) EXPECT_TRUE(code_set.count(k)) << "documented but not in the typed list: " << k;
}

}  // namespace

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s docs/api.md\n", argv[0]);
    return 1;
  }
  g_doc_path = argv[1];
  return RUN_ALL_TESTS();
}
