// HDF5 snapshots from Python: SnapshotWriter over arrays (wrapped, not copied, until write()
// copies them as in C++), and the readers. read_field returns the host field the C++ reader
// made, as a numpy array that owns it (no further copy).
#include <nanobind/nanobind.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <memory>

#include "bindings.hpp"
#include "dfluid/field_ops.hpp"
#include "dfluid/io/hdf5.hpp"

namespace dfluid::py {

namespace {

io::FieldKind parse_kind(const std::string& s) {
  if (s == "scalar") return io::FieldKind::Scalar;
  if (s == "velocity") return io::FieldKind::Velocity;
  if (s == "pressure") return io::FieldKind::Pressure;
  if (s == "force") return io::FieldKind::Force;
  if (s == "gradient") return io::FieldKind::Gradient;
  throw InvalidArgument("kind: '" + s +
                        "', expected scalar, velocity, pressure, force or gradient");
}

/// An array's dtype as float32 / float64 (anything else: InvalidArgument naming `name`).
bool is_double_array(nb::handle obj, const std::string& name) {
  nb::ndarray<nb::ro> a;
  if (!nb::try_cast(obj, a, false))
    throw InvalidArgument(name + ": expected an array, got a " +
                          std::string(nb::type_name(obj.type()).c_str()));
  if (a.dtype() == nb::dtype<double>()) return true;
  if (a.dtype() == nb::dtype<float>()) return false;
  throw InvalidArgument(name + ": expected a float32 or float64 array");
}

struct Fields {
  std::vector<std::unique_ptr<Field<float>>> f32;
  std::vector<std::unique_ptr<Field<double>>> f64;
  std::vector<io::NamedField> named;

  template <class T>
  const Field<T>& keep(Field<T> f) {
    if constexpr (std::is_same_v<T, float>) {
      f32.push_back(std::make_unique<Field<float>>(std::move(f)));
      return *f32.back();
    } else {
      f64.push_back(std::make_unique<Field<double>>(std::move(f)));
      return *f64.back();
    }
  }

  /// fields: {name: array} for cell fields, {name: (x, y[, z]) arrays} for MAC vectors.
  Fields(const Context& ctx, const Grid& g, nb::dict fields, nb::dict kinds) {
    for (auto [k, v] : fields) {
      const std::string name = nb::cast<std::string>(k);
      const bool vector = PyTuple_Check(v.ptr()) || PyList_Check(v.ptr());
      io::FieldKind kind = vector ? io::FieldKind::Velocity : io::FieldKind::Scalar;
      if (kinds.contains(k)) kind = parse_kind(nb::cast<std::string>(kinds[k]));
      if (!vector) {
        if (is_double_array(v, "fields['" + name + "']"))
          named.emplace_back(
              name,
              keep(wrap_field<double>(ctx, v, "fields['" + name + "']", g, Location::Cell, false)),
              kind);
        else
          named.emplace_back(
              name,
              keep(wrap_field<float>(ctx, v, "fields['" + name + "']", g, Location::Cell, false)),
              kind);
        continue;
      }
      if (nb::len(v) != size_t(g.dim))
        throw InvalidArgument("fields['" + name + "']: expected " + std::to_string(g.dim) +
                              " face arrays (a MAC vector)");
      const char* axis[] = {"_x", "_y", "_z"};
      for (int a = 0; a < g.dim; ++a) {
        const std::string item = "fields['" + name + "'][" + std::to_string(a) + "]";
        nb::handle c = v[size_t(a)];
        if (is_double_array(c, item))
          named.emplace_back(name + axis[a],
                             keep(wrap_field<double>(ctx, c, item, g, face_location(a), false)),
                             kind);
        else
          named.emplace_back(name + axis[a],
                             keep(wrap_field<float>(ctx, c, item, g, face_location(a), false)),
                             kind);
        named.back().vector_base = name;
        named.back().component = a;
      }
    }
  }
};

template <class T>
nb::object owned_array(Field<T> f) {
  auto* heap = new Field<T>(std::move(f));
  nb::capsule owner(heap, [](void* p) noexcept { delete static_cast<Field<T>*>(p); });
  return view_array(*heap, owner);
}

}  // namespace

void bind_io(nb::module_& m) {
  nb::class_<io::SnapshotWriter>(m, "SnapshotWriter",
                                 "Writes a run's snapshots to one HDF5 file with an XDMF sidecar "
                                 "(format dfluid.snapshots v1; see the README).")
      .def(
          "__init__",
          [](io::SnapshotWriter* self, const std::string& path, const Grid& grid, int interval,
             int gzip_level, bool xdmf) {
            io::WriterOptions o;
            o.interval = interval;
            o.gzip_level = gzip_level;
            o.xdmf = xdmf;
            new (self) io::SnapshotWriter(path, grid, o);
          },
          nb::arg("path"), nb::arg("grid"), nb::arg("interval") = 1, nb::arg("gzip_level") = 0,
          nb::arg("xdmf") = true)
      .def(
          "set_run_attribute",
          [](io::SnapshotWriter& w, const std::string& name, nb::handle v) {
            if (PyLong_Check(v.ptr()))
              w.set_run_attribute(name, nb::cast<std::int64_t>(v));
            else if (PyFloat_Check(v.ptr()))
              w.set_run_attribute(name, nb::cast<double>(v));
            else
              w.set_run_attribute(name, nb::cast<std::string>(nb::str(v)));
          },
          nb::arg("name"), nb::arg("value"))
      .def(
          "write",
          [](io::SnapshotWriter& w, const Context& ctx, std::int64_t step, double time, double dt,
             nb::dict fields, nb::dict kinds) {
            Fields f(ctx, w.grid(), fields, kinds);
            return w.write(ctx, step, time, dt, f.named);
          },
          nb::arg("ctx"), nb::arg("step"), nb::arg("time"), nb::arg("dt"), nb::arg("fields"),
          nb::arg("kinds") = nb::dict(),
          "Stores the snapshot of `step` when due (step % interval == 0); returns whether it "
          "did. fields: {name: cell array} or {name: (x, y[, z]) face arrays}; kinds: optional "
          "{name: 'scalar'|'velocity'|'pressure'|'force'|'gradient'}. The arrays are copied "
          "before write() returns.")
      .def("flush", &io::SnapshotWriter::flush)
      .def("close", &io::SnapshotWriter::close)
      .def("__enter__", [](nb::handle self) { return nb::borrow(self); })
      .def("__exit__", [](io::SnapshotWriter& w, nb::args) { w.close(); })
      .def_prop_ro("path", &io::SnapshotWriter::path)
      .def_prop_ro("xdmf_path", &io::SnapshotWriter::xdmf_path);

  m.def("read_grid", &io::read_grid, nb::arg("path"), "The grid stored in a snapshot file.");
  m.def(
      "list_snapshots",
      [](const std::string& path) {
        nb::list l;
        for (const io::SnapshotInfo& s : io::list_snapshots(path)) {
          nb::dict d;
          d["step"] = s.step;
          d["time"] = s.time;
          d["dt"] = s.dt;
          d["fields"] = s.fields;
          l.append(d);
        }
        return l;
      },
      nb::arg("path"), "Every complete snapshot: [{step, time, dt, fields}], by step.");
  m.def("read_run_attributes", &io::read_run_attributes, nb::arg("path"));
  m.def(
      "read_field",
      [](const std::string& path, std::int64_t step, const std::string& name, const Grid& grid,
         const std::string& dtype, bool convert) {
        if (dtype == "float32")
          return owned_array(io::read_field<float>(path, step, name, grid, convert));
        if (dtype == "float64")
          return owned_array(io::read_field<double>(path, step, name, grid, convert));
        throw InvalidArgument("dtype: '" + dtype + "', expected 'float32' or 'float64'");
      },
      nb::arg("path"), nb::arg("step"), nb::arg("name"), nb::arg("grid"),
      nb::arg("dtype") = "float32", nb::arg("convert") = false,
      "Dataset `name` of snapshot `step` (-1: the last) as a numpy array; the file's grid must "
      "equal `grid`. convert=True converts another stored precision.");
}

}  // namespace dfluid::py
