#include "plume/plume_outputs.hpp"

#include <algorithm>
#include <cstdio>

#include "common/image.hpp"
#include "common/output.hpp"

namespace dfluid::plume {
namespace {

std::string entry_label(int b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "(%g,%g)", kInflowCentre[b][0], kInflowCentre[b][1]);
  return buf;
}

template <class T>
std::vector<double> domain_cells(const Context& ctx, const Layout& l, const Field<T>& f) {
  const auto v = l.crop(f.to_vector(ctx), Location::Cell);
  return std::vector<double>(v.begin(), v.end());
}

}  // namespace

template <class T>
std::vector<std::string> write_pictures(const Context& ctx, const std::string& dir, const Layout& l,
                                        const std::vector<Field<T>>& before,
                                        const std::vector<Field<T>>& after,
                                        const Field<T>& reference) {
  std::vector<std::vector<double>> b, a;
  const std::vector<double> ref = domain_cells(ctx, l, reference);
  double vmax = *std::max_element(ref.begin(), ref.end());
  for (int e = 0; e < kBatch; ++e) {
    b.push_back(domain_cells(ctx, l, before[e]));
    a.push_back(domain_cells(ctx, l, after[e]));
    vmax = std::max({vmax, *std::max_element(b[e].begin(), b[e].end()),
                     *std::max_element(a[e].begin(), a[e].end())});
  }
  constexpr int kScale = 6;
  std::vector<std::string> files;
  std::vector<app::Image> overview;
  std::vector<std::string> captions;
  for (int e = 0; e < kBatch; ++e) {
    const std::string name = "smoke_entry" + std::to_string(e + 1) + ".png";
    app::write_png(app::join(dir, name),
                   app::side_by_side({app::render_field(b[e], kNx, kNy, 0, vmax, kScale),
                                      app::render_field(a[e], kNx, kNy, 0, vmax, kScale),
                                      app::render_field(ref, kNx, kNy, 0, vmax, kScale)},
                                     {entry_label(e) + " from rest", "optimized", "reference"}));
    files.push_back(name);
    overview.push_back(app::render_field(a[e], kNx, kNy, 0, vmax, kScale));
    captions.push_back(entry_label(e) + (e == kReferenceEntry ? " = ref" : ""));
  }
  app::write_png(app::join(dir, "smoke_overview.png"), app::side_by_side(overview, captions));
  files.push_back("smoke_overview.png");
  return files;
}

template <class T>
void write_snapshots(const Context& ctx, const std::string& path, const Layout& l,
                     const std::vector<SmokeState<T>>& initial, const std::vector<Field<T>>& after,
                     const Field<T>& reference, const PlumeSettings& s,
                     const app::DescentOptions& d, double loss) {
  const Grid& g = l.domain;
  io::SnapshotWriter w(path, g);
  w.set_run_attribute("app", kAppName);
  w.set_run_attribute("problem", "PBDL smoke plume initial-velocity optimization (reference 3)");
  w.set_run_attribute("steps", s.steps);
  w.set_run_attribute("iterations", d.iterations);
  w.set_run_attribute("learning_rate", d.learning_rate);
  w.set_run_attribute("tolerance", s.tolerance);
  w.set_run_attribute("inflow_edge", s.inflow_edge);
  w.set_run_attribute("wall_tangential", s.wall_tangential);
  w.set_run_attribute("final_loss", loss);
  std::vector<MacVelocity<T>> velocity;
  for (const auto& st : initial) {
    velocity.emplace_back(ctx, g);
    for (int a = 0; a < 2; ++a)
      velocity.back()[a].assign(ctx, l.crop(st.velocity[a].to_vector(ctx), face_location(a)));
  }
  std::vector<io::NamedField> first;
  for (int e = 0; e < kBatch; ++e)
    io::add_vector(first, "initial_velocity_" + std::to_string(e + 1), velocity[e]);
  w.write(ctx, 0, 0.0, 1.0, first);
  std::vector<Field<T>> smoke;
  for (int e = 0; e <= kBatch; ++e) {
    smoke.emplace_back(ctx, g);
    smoke.back().assign(ctx,
                        l.crop((e < kBatch ? after[e] : reference).to_vector(ctx), Location::Cell));
  }
  std::vector<io::NamedField> last;
  for (int e = 0; e < kBatch; ++e)
    last.emplace_back("smoke_" + std::to_string(e + 1), smoke[e], io::FieldKind::Scalar);
  last.emplace_back("reference", smoke[kBatch], io::FieldKind::Scalar);
  w.write(ctx, s.steps, double(s.steps), 1.0, last);
  w.close();
}

#define DFLUID_PLUME_OUTPUTS(T)                                                        \
  template std::vector<std::string> write_pictures<T>(                                 \
      const Context&, const std::string&, const Layout&, const std::vector<Field<T>>&, \
      const std::vector<Field<T>>&, const Field<T>&);                                  \
  template void write_snapshots<T>(const Context&, const std::string&, const Layout&,  \
                                   const std::vector<SmokeState<T>>&,                  \
                                   const std::vector<Field<T>>&, const Field<T>&,      \
                                   const PlumeSettings&, const app::DescentOptions&, double);
DFLUID_PLUME_OUTPUTS(float)
DFLUID_PLUME_OUTPUTS(double)
#undef DFLUID_PLUME_OUTPUTS

}  // namespace dfluid::plume
