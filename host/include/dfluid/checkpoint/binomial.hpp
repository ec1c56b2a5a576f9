// Binomial checkpointing arithmetic (Griewank & Walther, Revolve, ACM TOMS Alg. 799).
//
// n time steps, s checkpoint slots, the initial state occupying one of them. The minimal
// number of plain forward steps ("advances") needed to reverse all n steps is
//
//     numforw(n, s) = t·n − C(s+t, s+1),   t = the smallest integer with C(s+t, s) ≥ n,
//
// which equals the exact recurrence E(1, s) = 0, E(n, 1) = n(n−1)/2,
// E(n, s) = min over 1 ≤ i < n of [ i + E(i, s) + E(n−i, s−1) ].
// numforw(·, s) is convex and piecewise linear in n with slope t on each piece, so
// E(n+1, s) − E(n, s) = repetitions(n+1, s); the scheduler uses this to find the optimal
// split point by bisection.
#pragma once

#include <cstdint>

namespace dfluid::checkpoint {

/// The repetition number t: the smallest t ≥ 0 with C(s+t, s) ≥ n (n ≥ 1, s ≥ 1).
std::int64_t repetitions(std::int64_t n, std::int64_t s);

/// Minimal number of advances to reverse n steps with s slots (n ≥ 1, s ≥ 1), closed form.
/// Throws InvalidArgument when n < 1 or s < 1 or when the count would overflow 64 bits.
std::int64_t numforw(std::int64_t n, std::int64_t s);

/// Optimal first checkpoint position for n ≥ 2 steps and s ≥ 2 slots: the smallest
/// 1 ≤ i < n that minimizes i + E(i, s) + E(n−i, s−1).
std::int64_t optimal_split(std::int64_t n, std::int64_t s);

}  // namespace dfluid::checkpoint
