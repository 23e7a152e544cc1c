#include <gtest/gtest.h>
#include "actors/reconciler.hpp"
TEST(Reconciler, Empty) { EXPECT_FALSE(actors::plan_recovery({}).eventful()); }
