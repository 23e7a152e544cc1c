// runtime/user_db: the files-only lookups the static build uses, on passwd/group files
// made here, and the build's own lookups against this machine's root entries.
#include "runtime/user_db.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace {

class UserDbFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/dockless-userdb-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    write("passwd",
          "root:x:0:0:root:/root:/bin/bash\n"
          "# a comment line is not an entry\n"
          "web:x:1001:1002:Web:/srv/web:/usr/sbin/nologin\n"
          "broken-line-without-fields\n"
          "db:x:1003:1003::/var/lib/db:/bin/false\n");
    write("group",
          "root:x:0:\n"
          "web:x:1002:\n"
          "dialout:x:20:pi,web\n"
          "video:x:44:pi\n"
          "dockless:x:998:web,db\n");
  }
  void TearDown() override {
    std::remove((dir_ + "/passwd").c_str());
    std::remove((dir_ + "/group").c_str());
    std::remove((dir_ + "/nsswitch.conf").c_str());
    ::rmdir(dir_.c_str());
  }
  void write(const std::string& name, const std::string& text) { std::ofstream(dir_ + "/" + name) << text; }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::string dir_;
};

// What a service's HOME/USER/SHELL come from (actors/service_env.hpp), and config's suggestions.
TEST_F(UserDbFiles, FindsByUidWithHomeAndShellAndListsNames) {
  auto web = runtime::find_user_in_file(path("passwd"), 1001);
  ASSERT_TRUE(web);
  EXPECT_EQ(web->name, "web");
  EXPECT_EQ(web->home, "/srv/web");
  EXPECT_EQ(web->shell, "/usr/sbin/nologin");
  EXPECT_FALSE(runtime::find_user_in_file(path("passwd"), 4242));
  EXPECT_EQ(runtime::user_names_in_file(path("passwd")), (std::vector<std::string>{"root", "web", "db"}));
  auto root = runtime::find_user(0);
  ASSERT_TRUE(root);
  EXPECT_EQ(root->name, "root");
}

TEST_F(UserDbFiles, FindsUsersPastCommentsAndBrokenLines) {
  auto web = runtime::find_user_in_file(path("passwd"), "web");
  ASSERT_TRUE(web);
  EXPECT_EQ(web->uid, 1001u);
  EXPECT_EQ(web->gid, 1002u);
  auto db = runtime::find_user_in_file(path("passwd"), "db");
  ASSERT_TRUE(db);
  EXPECT_EQ(db->uid, 1003u);
  EXPECT_FALSE(runtime::find_user_in_file(path("passwd"), "nobody-here"));
  EXPECT_FALSE(runtime::find_user_in_file(path("passwd"), "we"));  // no prefix match
  EXPECT_FALSE(runtime::find_user_in_file(path("missing"), "web"));
}

TEST_F(UserDbFiles, FindsGroups) {
  EXPECT_EQ(runtime::find_group_in_file(path("group"), "dockless"), 998u);
  EXPECT_EQ(runtime::find_group_in_file(path("group"), "root"), 0u);
  EXPECT_FALSE(runtime::find_group_in_file(path("group"), "docker"));
}

TEST_F(UserDbFiles, SupplementaryGroupsFromMemberLists) {
  auto groups = runtime::user_groups_in_file(path("group"), "web", 1002);
  EXPECT_EQ(groups, (std::vector<gid_t>{1002, 20, 998}));
  EXPECT_EQ(runtime::user_groups_in_file(path("group"), "nobody-here", 5), std::vector<gid_t>{5});
}

// Whether a user's groups can only be in /etc/group (then NSS is not asked for them).
TEST_F(UserDbFiles, NsswitchSourcesBeyondTheFiles) {
  EXPECT_FALSE(runtime::nss_has_remote_sources(path("nsswitch.conf"), "group"));  // no file: files only
  write("nsswitch.conf",
        "# group: ldap is a comment\n"
        "passwd:         files systemd\n"
        "group:  files [NOTFOUND=return] systemd   # Debian's default\n"
        "shadow: files sss\n"
        "netgroup:       nis\n");
  EXPECT_FALSE(runtime::nss_has_remote_sources(path("nsswitch.conf"), "passwd"));
  EXPECT_FALSE(runtime::nss_has_remote_sources(path("nsswitch.conf"), "group"));
  EXPECT_TRUE(runtime::nss_has_remote_sources(path("nsswitch.conf"), "shadow"));
  EXPECT_FALSE(runtime::nss_has_remote_sources(path("nsswitch.conf"), "hosts"));  // no line
  write("nsswitch.conf", "group: compat\n");  // NIS +/- entries: only NSS reads them right
  EXPECT_TRUE(runtime::nss_has_remote_sources(path("nsswitch.conf"), "group"));
  write("nsswitch.conf", "group:files ldap\n");
  EXPECT_TRUE(runtime::nss_has_remote_sources(path("nsswitch.conf"), "group"));
}

TEST(UserDb, ThisMachinesRoot) {
  auto root = runtime::find_user("root");
  ASSERT_TRUE(root);
  EXPECT_EQ(root->uid, 0u);
  EXPECT_EQ(root->gid, 0u);
  EXPECT_EQ(runtime::find_group("root"), 0u);
  EXPECT_EQ(runtime::find_local_group("root"), 0u);
  EXPECT_FALSE(runtime::find_local_group("dockless-no-such-group"));
  EXPECT_FALSE(runtime::find_user("dockless-no-such-user"));
  auto groups = runtime::user_groups("root", 0);
  ASSERT_FALSE(groups.empty());
  EXPECT_EQ(groups.front(), 0u);
}

}  // namespace
