// Shared main() for every GoogleTest program: exits 77 (meson's "skip") when this
// kernel cannot give us an io_uring at all, instead of failing every test.
#include <gtest/gtest.h>
#include <liburing.h>

#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  io_uring ring;
  int rc = io_uring_queue_init(4, &ring, 0);
  if (rc < 0) {
    std::fprintf(stderr, "SKIP: io_uring unavailable here: %s\n", std::strerror(-rc));
    return 77;
  }
  io_uring_queue_exit(&ring);
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
