// Reading snapshot files: grid, snapshot list, fields for restarts and targets.
#include <algorithm>
#include <cmath>
#include <sstream>

#include "dfluid/field_ops.hpp"
#include "io/io_hdf5_util.hpp"

namespace dfluid::io {

using detail::check;
using detail::check_id;
using detail::H5Lock;
using detail::Handle;

namespace {

Handle open_file(const std::string& path) {
  if (path.empty()) throw IoError("snapshot file: empty path");
  return check_id(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT),
                  "cannot open snapshot file '" + path + "'");
}

std::string file_where(const std::string& path) {
  return "snapshot file '" + path + "'";
}

Grid grid_of(hid_t file, const std::string& path) {
  const std::string where = file_where(path) + ", group /grid";
  if (H5Lexists(file, "/grid", H5P_DEFAULT) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    throw IoError(file_where(path) + ": no /grid group; not a dfluid snapshot file");
  }
  Handle g = check_id(H5Gopen2(file, "/grid", H5P_DEFAULT), where + ": cannot open");
  Grid grid;
  grid.dim = int(detail::read_attr_int(g, "dim", where));
  std::vector<std::int64_t> n = detail::read_attr_ints(g, "cells", where);
  std::vector<double> o = detail::read_attr_doubles(g, "origin", where);
  if (grid.dim < 1 || grid.dim > 3 || n.size() != 3 || o.size() != 3)
    throw IoError(where + ": dim, cells or origin has the wrong size");
  for (int a = 0; a < 3; ++a) {
    grid.n[a] = int(n[a]);
    grid.origin[a] = o[a];
  }
  grid.dx = detail::read_attr_double(g, "dx", where);
  static const char* bnames[3] = {"boundary_x", "boundary_y", "boundary_z"};
  for (int a = 0; a < 3; ++a) {
    std::string b = detail::read_attr_string(g, bnames[a], where);
    std::size_t slash = b.find('/');
    if (slash == std::string::npos) throw IoError(where + ": bad " + bnames[a] + " '" + b + "'");
    try {
      grid.boundary[a] = {parse_boundary_kind(b.substr(0, slash)),
                          parse_boundary_kind(b.substr(slash + 1))};
    } catch (const InvalidArgument& e) {
      throw IoError(where + ": " + bnames[a] + ": " + e.what());
    }
  }
  try {
    grid.validate();
  } catch (const InvalidArgument& e) {
    throw IoError(where + ": invalid grid: " + e.what());
  }
  return grid;
}

herr_t collect_attr_name(hid_t, const char* name, const H5A_info_t*, void* data) {
  static_cast<std::vector<std::string>*>(data)->push_back(name);
  return 0;
}

// H5Gget_info + H5Lget_name_by_idx: the same API in HDF5 1.10, 1.12 and 1.14.
std::vector<std::string> member_names(hid_t group, const std::string& where) {
  H5G_info_t gi;
  check(H5Gget_info(group, &gi), where + ": cannot list members");
  std::vector<std::string> names;
  for (hsize_t i = 0; i < gi.nlinks; ++i) {
    ssize_t len =
        H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (len < 0) detail::fail(where + ": cannot read a member name");
    std::string name(static_cast<std::size_t>(len) + 1, '\0');
    H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(),
                       H5P_DEFAULT);
    name.resize(static_cast<std::size_t>(len));
    names.push_back(std::move(name));
  }
  std::sort(names.begin(), names.end());
  return names;
}

SnapshotInfo info_of(hid_t file, const std::string& gname, const std::string& path) {
  const std::string where = file_where(path) + ", group " + gname;
  Handle g = check_id(H5Gopen2(file, gname.c_str(), H5P_DEFAULT), where + ": cannot open");
  SnapshotInfo s;
  s.step = detail::read_attr_int(g, "step", where);
  s.time = detail::read_attr_double(g, "time", where);
  s.dt = detail::read_attr_double(g, "dt", where);
  s.fields = member_names(g, where);
  return s;
}

std::vector<SnapshotInfo> list_all(hid_t file, const std::string& path) {
  if (H5Lexists(file, "/snapshots", H5P_DEFAULT) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    throw IoError(file_where(path) + ": no /snapshots group; not a dfluid snapshot file");
  }
  Handle g = check_id(H5Gopen2(file, "/snapshots", H5P_DEFAULT),
                      file_where(path) + ": cannot open /snapshots");
  // A snapshot that cannot be opened is the one a killed run was writing when
  // it died (its links reached the file, its objects did not): left out.
  H5G_info_t gi;
  check(H5Gget_info(g, &gi), file_where(path) + ": cannot list /snapshots");
  std::vector<SnapshotInfo> out;
  for (hsize_t i = 0; i < gi.nlinks; ++i) {
    char name[64] = {0};
    if (H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT) <
        0) {
      H5Eclear2(H5E_DEFAULT);
      continue;
    }
    try {
      out.push_back(info_of(file, std::string("/snapshots/") + name, path));
    } catch (const IoError&) {
      continue;
    }
  }
  std::sort(out.begin(), out.end(),
            [](const SnapshotInfo& a, const SnapshotInfo& b) { return a.step < b.step; });
  return out;
}

std::string steps_text(const std::vector<SnapshotInfo>& all) {
  if (all.empty()) return "the file holds no snapshots";
  std::string s = "steps in the file: ";
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (i == 8 && all.size() > 10) {
      s += ", ..., " + std::to_string(all.back().step);
      break;
    }
    s += (i ? ", " : "") + std::to_string(all[i].step);
  }
  return s;
}

/// Group name of `step` (the last one for kLatestStep), with a clear error when absent.
std::string find_snapshot(hid_t file, std::int64_t step, const std::string& path) {
  if (step == kLatestStep) {
    std::vector<SnapshotInfo> all = list_all(file, path);
    if (all.empty()) throw IoError(file_where(path) + ": holds no snapshots");
    return detail::snapshot_group_name(all.back().step);
  }
  std::string g = detail::snapshot_group_name(step);
  if (step < 0 || H5Lexists(file, "/snapshots", H5P_DEFAULT) <= 0 ||
      H5Lexists(file, g.c_str(), H5P_DEFAULT) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    std::string avail;
    try {
      avail = steps_text(list_all(file, path));
    } catch (const IoError& e) {
      avail = e.what();
    }
    throw IoError(file_where(path) + ": no snapshot of step " + std::to_string(step) + " (" +
                  avail + ")");
  }
  return g;
}

bool same_value(double a, double b) {
  return std::abs(a - b) <= 1e-12 * std::max(std::abs(a), std::abs(b));
}

template <class T>
Field<T> read_impl(const std::string& path, std::int64_t step, const std::string& name,
                   const Grid& expected, const Location* want, bool convert) {
  expected.validate();
  H5Lock lock;
  Handle file = open_file(path);
  const std::string gname = find_snapshot(file, step, path);
  const std::string dname = gname + "/" + name;
  const std::string where = file_where(path) + ", dataset " + dname;
  if (name.empty() || name.find('/') != std::string::npos ||
      H5Lexists(file, dname.c_str(), H5P_DEFAULT) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    std::string have;
    for (const std::string& n : info_of(file, gname, path).fields)
      have += (have.empty() ? "" : ", ") + n;
    throw IoError(file_where(path) + ": snapshot " + gname + " has no dataset '" + name +
                  "' (it has: " + (have.empty() ? "nothing" : have) + ")");
  }
  Handle d = check_id(H5Dopen2(file, dname.c_str(), H5P_DEFAULT), where + ": cannot open");
  Location loc = Location::Cell;
  if (detail::has_attr(d, "location"))
    loc = detail::parse_location(detail::read_attr_string(d, "location", where), where);
  if (want && *want != loc)
    throw IoError(where + ": holds " + to_string(loc) + " values, expected " + to_string(*want));
  if (loc != Location::Cell && static_cast<int>(loc) > expected.dim)
    throw IoError(where + ": holds " + to_string(loc) + " values, which a " +
                  std::to_string(expected.dim) + "D grid does not have");
  const std::vector<hsize_t> want_shape =
      detail::dataset_shape(expected.dim, extents_of(expected, loc));
  Handle space = check_id(H5Dget_space(d), where + ": dataspace");
  int rank = H5Sget_simple_extent_ndims(space);
  if (rank < 0) detail::fail(where + ": dataspace rank");
  std::vector<hsize_t> found(static_cast<std::size_t>(rank));
  H5Sget_simple_extent_dims(space, found.data(), nullptr);
  if (found != want_shape)
    throw IoError(where + ": expected shape " + detail::shape_to_string(want_shape) + " (" +
                  to_string(loc) + " of " + expected.describe() + "), found shape " +
                  detail::shape_to_string(found) + "; no resampling is done");
  Handle type = check_id(H5Dget_type(d), where + ": datatype");
  const char* want_type = sizeof(T) == 8 ? "float64" : "float32";
  if (H5Tget_class(type) != H5T_FLOAT)
    throw IoError(where + ": expected type " + want_type + ", found a non-floating-point type");
  std::size_t size = H5Tget_size(type);
  if (size != sizeof(T) && !convert)
    throw IoError(where + ": expected type " + want_type + ", found " +
                  (size == 8   ? "float64"
                   : size == 4 ? "float32"
                               : "float" + std::to_string(8 * size)) +
                  " (pass convert = true to convert)");
  Grid fg = grid_of(file, path);
  if (fg.dim != expected.dim || fg.n != expected.n || !same_value(fg.dx, expected.dx) ||
      !same_value(fg.origin[0], expected.origin[0]) ||
      !same_value(fg.origin[1], expected.origin[1]) ||
      !same_value(fg.origin[2], expected.origin[2])) {
    std::ostringstream os;
    os.precision(17);
    os << file_where(path) << ": its grid (" << fg.describe() << ", origin " << fg.origin[0] << ","
       << fg.origin[1] << "," << fg.origin[2] << ") differs from the expected one ("
       << expected.describe() << ", origin " << expected.origin[0] << "," << expected.origin[1]
       << "," << expected.origin[2] << "); no resampling is done";
    throw IoError(os.str());
  }
  Field<T> out(Context::cpu(), expected, loc, MemorySpace::Host);
  check(H5Dread(d, sizeof(T) == 8 ? H5T_NATIVE_DOUBLE : H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL,
                H5P_DEFAULT, out.data()),
        where + ": cannot read");
  return out;
}

}  // namespace

Grid read_grid(const std::string& path) {
  H5Lock lock;
  Handle file = open_file(path);
  return grid_of(file, path);
}

std::vector<SnapshotInfo> list_snapshots(const std::string& path) {
  H5Lock lock;
  Handle file = open_file(path);
  return list_all(file, path);
}

SnapshotInfo read_snapshot_info(const std::string& path, std::int64_t step) {
  H5Lock lock;
  Handle file = open_file(path);
  return info_of(file, find_snapshot(file, step, path), path);
}

std::vector<std::pair<std::string, std::string>> read_run_attributes(const std::string& path) {
  H5Lock lock;
  Handle file = open_file(path);
  const std::string where = file_where(path) + ", group /run";
  Handle g = check_id(H5Gopen2(file, "/run", H5P_DEFAULT), where + ": cannot open");
  std::vector<std::string> names;
  hsize_t idx = 0;
  check(H5Aiterate2(g, H5_INDEX_NAME, H5_ITER_INC, &idx, &collect_attr_name, &names),
        where + ": cannot list attributes");
  std::vector<std::pair<std::string, std::string>> out;
  for (const std::string& n : names)
    out.emplace_back(n, detail::read_attr_as_text(g, n.c_str(), where));
  return out;
}

template <class T>
Field<T> read_field(const std::string& path, std::int64_t step, const std::string& name,
                    const Grid& expected, bool convert) {
  return read_impl<T>(path, step, name, expected, nullptr, convert);
}

template <class T>
void read_field_into(const Context& ctx, const std::string& path, std::int64_t step,
                     const std::string& name, Field<T>& dst, bool convert) {
  if (dst.empty()) throw InvalidArgument("read_field_into: destination field is empty");
  Location loc = dst.location();
  Field<T> host = read_impl<T>(path, step, name, dst.grid(), &loc, convert);
  copy(ctx, host, dst);
}

template <class T>
void read_vector_into(const Context& ctx, const std::string& path, std::int64_t step,
                      const std::string& base, MacVelocity<T>& u, bool convert) {
  static const char* suffix[3] = {"_x", "_y", "_z"};
  for (int a = 0; a < u.dim(); ++a)
    read_field_into(ctx, path, step, base + suffix[a], u[a], convert);
}

#define DFLUID_IO_INST(T)                                                               \
  template Field<T> read_field<T>(const std::string&, std::int64_t, const std::string&, \
                                  const Grid&, bool);                                   \
  template void read_field_into<T>(const Context&, const std::string&, std::int64_t,    \
                                   const std::string&, Field<T>&, bool);                \
  template void read_vector_into<T>(const Context&, const std::string&, std::int64_t,   \
                                    const std::string&, MacVelocity<T>&, bool);
DFLUID_IO_INST(float)
DFLUID_IO_INST(double)
#undef DFLUID_IO_INST

}  // namespace dfluid::io
