// Helpers shared by the rollout gradient tests (store-all and checkpointed).
#pragma once

#include <vector>

#include "dfluid/rollout.hpp"

namespace dfluid::testing {

/// A user loss on the density (scalar 0) at `steps`: value sum_c w_c q_c^3 / 3, gradient
/// w q^2, evaluated on the host. `weight` must outlive the loss.
inline UserLoss<double> cubic_user_loss(const Context& ctx, const Field<double>& weight,
                                        std::vector<int> steps) {
  UserLoss<double> u;
  u.name = "cubic";
  u.steps = std::move(steps);
  const Field<double>* w = &weight;
  const Context c = ctx;
  u.fn = [w, c](int, const SmokeState<double>& s, SmokeGradient<double>& grad) {
    std::vector<double> q = s.scalars[0].to_vector(c), wv = w->to_vector(c), gv(q.size());
    double v = 0;
    for (std::size_t i = 0; i < q.size(); ++i) {
      v += wv[i] * q[i] * q[i] * q[i] / 3;
      gv[i] = wv[i] * q[i] * q[i];
    }
    grad.scalars[0].assign(c, gv);
    return v;
  };
  return u;
}

}  // namespace dfluid::testing
