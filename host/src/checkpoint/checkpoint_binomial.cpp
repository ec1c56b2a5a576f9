// Binomial checkpointing arithmetic: repetition number, numforw, optimal split.
#include "dfluid/checkpoint/binomial.hpp"

#include <cmath>
#include <limits>
#include <string>

#include "dfluid/error.hpp"

namespace dfluid::checkpoint {
namespace {

using u128 = unsigned __int128;

void check_args(const char* what, std::int64_t n, std::int64_t s) {
  if (n < 1 || s < 1) {
    throw InvalidArgument(std::string(what) + ": need steps n >= 1 and slots s >= 1, got n = " +
                          std::to_string(n) + ", s = " + std::to_string(s));
  }
}

// C(s+t, s) for the given t, saturated at `cap` (exact below it).
u128 beta(std::int64_t s, std::int64_t t, u128 cap) {
  u128 b = 1;
  for (std::int64_t k = 0; k < t && b < cap; ++k) {
    // C(s+k+1, s) = C(s+k, s)·(s+k+1)/(k+1), exact at every stage.
    b = b * static_cast<u128>(s + k + 1) / static_cast<u128>(k + 1);
  }
  return b;
}

}  // namespace

std::int64_t repetitions(std::int64_t n, std::int64_t s) {
  check_args("repetitions", n, s);
  if (n <= 1) return 0;
  // One sweep suffices once C(s+1, s) = s+1 >= n; also keeps s + t + 1 below from overflowing
  // for slot counts near the int64 limit.
  if (s >= n - 1) return 1;
  if (s == 1) return n - 1;  // C(1+t, 1) = t+1
  if (s == 2) {              // C(2+t, 2) = (t+1)(t+2)/2 >= n
    auto t = static_cast<std::int64_t>(
        std::ceil((std::sqrt(8.0 * static_cast<double>(n) + 1.0) - 3.0) / 2.0));
    if (t < 0) t = 0;
    auto ok = [n](std::int64_t x) {
      return static_cast<u128>(x + 1) * static_cast<u128>(x + 2) / 2 >= static_cast<u128>(n);
    };
    while (t > 0 && ok(t - 1))
      --t;
    while (!ok(t))
      ++t;
    return t;
  }
  // C(s+t, s) grows at least like (t+1)(t+2)(t+3)/6 for s >= 3: t stays small.
  const u128 target = static_cast<u128>(n);
  u128 b = 1;
  std::int64_t t = 0;
  while (b < target) {
    b = b * static_cast<u128>(s + t + 1) / static_cast<u128>(t + 1);
    ++t;
  }
  return t;
}

std::int64_t numforw(std::int64_t n, std::int64_t s) {
  check_args("numforw", n, s);
  const std::int64_t t = repetitions(n, s);
  if (t == 0) return 0;
  if (t == 1) return n - 1;  // C(s+1, s+1) = 1; s may be near the int64 limit
  // C(s+t, s+1) = C(s+t, s) · t / (s+1).
  const u128 big = static_cast<u128>(1) << 100;
  const u128 b = beta(s, t, big);
  const u128 c = b * static_cast<u128>(t) / static_cast<u128>(s + 1);
  const u128 tn = static_cast<u128>(t) * static_cast<u128>(n);
  const u128 result = tn - c;
  if (b >= big || result > static_cast<u128>(std::numeric_limits<std::int64_t>::max())) {
    throw InvalidArgument("numforw: advance count overflows 64 bits for n = " + std::to_string(n) +
                          ", s = " + std::to_string(s));
  }
  return static_cast<std::int64_t>(result);
}

std::int64_t optimal_split(std::int64_t n, std::int64_t s) {
  if (n < 2 || s < 2) {
    throw InvalidArgument("optimal_split: need n >= 2 and s >= 2, got n = " + std::to_string(n) +
                          ", s = " + std::to_string(s));
  }
  // Enough slots to store every state (s ≥ n − 1, so E(i, s) = i − 1 and
  // E(n−i, s−1) = n − i − 1): f(i) = n + i − 2 is smallest at i = 1. The shortcut keeps
  // store-all plans from bisecting once per step.
  if (s >= n - 1) return 1;
  // f(i) = i + E(i, s) + E(n−i, s−1) is convex in i; its forward difference is
  // g(i) = 1 + t(i+1, s) − t(n−i, s−1), nondecreasing. The smallest minimizer is the smallest
  // i in [1, n−2] with g(i) >= 0, or n−1 when there is none.
  auto g_nonneg = [n, s](std::int64_t i) {
    return 1 + repetitions(i + 1, s) >= repetitions(n - i, s - 1);
  };
  std::int64_t lo = 1, hi = n - 1;  // answer in [lo, hi]; hi = n−1 means "none in [1, n−2]"
  while (lo < hi) {
    const std::int64_t mid = lo + (hi - lo) / 2;
    if (g_nonneg(mid)) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return lo;
}

}  // namespace dfluid::checkpoint
