// SnapshotWriter: the caller's side (validation, copies into owned buffers, a
// bounded queue) and the writer thread (HDF5 datasets, flush, XDMF sidecar).
#include <cctype>
#include <cstdio>
#include <utility>

#include "dfluid/build_config.hpp"
#include "io/io_hdf5_util.hpp"
#include "io/io_writer_impl.hpp"
#include "io/io_xdmf.hpp"

namespace dfluid::io {

using detail::check;
using detail::check_id;
using detail::H5Lock;
using detail::Handle;
using detail::write_attr;

NamedField::NamedField(std::string n, const Field<float>& f, FieldKind k)
    : name(std::move(n)), kind(k), f32(&f) {}
NamedField::NamedField(std::string n, const Field<double>& f, FieldKind k)
    : name(std::move(n)), kind(k), f64(&f) {}

namespace {
template <class V>
void add_components(std::vector<NamedField>& out, const std::string& base, const V& v,
                    FieldKind kind) {
  static const char* suffix[3] = {"_x", "_y", "_z"};
  for (int a = 0; a < v.dim(); ++a) {
    out.emplace_back(base + suffix[a], v[a], kind);
    out.back().vector_base = base;
    out.back().component = a;
  }
}
}  // namespace

void add_vector(std::vector<NamedField>& out, const std::string& base, const MacVelocity<float>& u,
                FieldKind kind) {
  add_components(out, base, u, kind);
}
void add_vector(std::vector<NamedField>& out, const std::string& base, const MacVelocity<double>& u,
                FieldKind kind) {
  add_components(out, base, u, kind);
}
void add_vector(std::vector<NamedField>& out, const std::string& base, const CellVector<float>& v,
                FieldKind kind) {
  add_components(out, base, v, kind);
}
void add_vector(std::vector<NamedField>& out, const std::string& base, const CellVector<double>& v,
                FieldKind kind) {
  add_components(out, base, v, kind);
}

// ------------------------------------------------------------ construction ----

SnapshotWriter::SnapshotWriter(const std::string& path, const Grid& grid, WriterOptions options)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  grid.validate();
  if (options.interval < 1)
    throw InvalidArgument("WriterOptions::interval = " + std::to_string(options.interval) +
                          ": must be >= 1");
  if (options.gzip_level < 0 || options.gzip_level > 9)
    throw InvalidArgument("WriterOptions::gzip_level = " + std::to_string(options.gzip_level) +
                          ": must be 0 (off) to 9");
  if (options.queue_depth < 1)
    throw InvalidArgument("WriterOptions::queue_depth = " + std::to_string(options.queue_depth) +
                          ": must be >= 1");
  if (options.chunk_bytes < 1024)
    throw InvalidArgument("WriterOptions::chunk_bytes = " + std::to_string(options.chunk_bytes) +
                          ": must be >= 1024");
  m.path = path;
  m.xdmf_path = xdmf_path_for(path);
  std::size_t slash = path.find_last_of('/');
  m.h5_name = slash == std::string::npos ? path : path.substr(slash + 1);
  m.grid = grid;
  m.opt = std::move(options);
  m.create_file();
  m.slots.resize(static_cast<std::size_t>(m.opt.queue_depth));
  for (int i = 0; i < m.opt.queue_depth; ++i)
    m.free_slots.push_back(i);
  m.thread = std::thread([&m] { m.run(); });
}

Handle SnapshotWriter::Impl::make_fapl() {
  Handle fapl = check_id(H5Pcreate(H5P_FILE_ACCESS), "H5Pcreate");
  // Keep dirty metadata in memory until H5Fflush: a run killed between two
  // snapshots then leaves the file as it was at the last flush, readable.
  // (The cache then only grows; reopen() empties it every few snapshots.)
  H5AC_cache_config_t mdc;
  mdc.version = H5AC__CURR_CACHE_CONFIG_VERSION;
  check(H5Pget_mdc_config(fapl, &mdc), "H5Pget_mdc_config");
  mdc.evictions_enabled = false;
  mdc.incr_mode = H5C_incr__off;
  mdc.flash_incr_mode = H5C_flash_incr__off;
  mdc.decr_mode = H5C_decr__off;
  check(H5Pset_mdc_config(fapl, &mdc), "H5Pset_mdc_config");
  // The default (earliest) file format: no "open for writing" flag in the
  // superblock, so a file whose writer died opens without h5clear.
  return fapl;
}

void SnapshotWriter::Impl::reopen() {
  file.close_or_throw("cannot close snapshot file '" + path + "'");
  Handle fapl = make_fapl();
  file = check_id(H5Fopen(path.c_str(), H5F_ACC_RDWR, fapl),
                  "cannot reopen snapshot file '" + path + "'");
  snapshots_since_open = 0;
}

void SnapshotWriter::Impl::create_file() {
  H5Lock lock;
  const std::string where = "snapshot file '" + path + "'";
  if (opt.gzip_level > 0 && H5Zfilter_avail(H5Z_FILTER_DEFLATE) <= 0)
    throw IoError(where + ": this HDF5 has no gzip (deflate) filter; set gzip_level = 0");
  Handle fapl = make_fapl();
  // Symbol-table nodes of kSnodHalf * 2 entries: /snapshots gets no node split
  // (an update of several blocks) before that many snapshots; see write_slot.
  Handle fcpl = check_id(H5Pcreate(H5P_FILE_CREATE), "H5Pcreate");
  check(H5Pset_sym_k(fcpl, 16, kSnodHalf), "H5Pset_sym_k");
  file = check_id(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl, fapl), "cannot create " + where);
  write_attr(file, "format", std::string("dfluid.snapshots"), where);
  write_attr(file, "format_version", std::int64_t(1), where);
  write_attr(file, "dfluid_version", std::string(DFLUID_VERSION_STRING), where);
  write_attr(file, "data_order", std::string("C order, x fastest: [z][y][x]"), where);
  if (opt.precision != Precision::AsStored)
    write_attr(file, "precision",
               std::string(opt.precision == Precision::Float32 ? "float32" : "float64"), where);

  Handle g = check_id(H5Gcreate2(file, "/grid", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                      where + ": cannot create /grid");
  const std::string gw = where + ", group /grid";
  write_attr(g, "dim", std::int64_t(grid.dim), gw);
  write_attr(g, "cells", std::vector<std::int64_t>{grid.n[0], grid.n[1], grid.n[2]}, gw);
  std::vector<std::int64_t> shape;
  for (hsize_t s : detail::dataset_shape(grid.dim, grid.n))
    shape.push_back(std::int64_t(s));
  write_attr(g, "shape", shape, gw);
  write_attr(g, "dx", grid.dx, gw);
  write_attr(g, "origin", std::vector<double>{grid.origin[0], grid.origin[1], grid.origin[2]}, gw);
  static const char* bnames[3] = {"boundary_x", "boundary_y", "boundary_z"};
  for (int a = 0; a < 3; ++a)
    write_attr(g, bnames[a],
               std::string(to_string(grid.boundary[a][0])) + "/" + to_string(grid.boundary[a][1]),
               gw);
  Handle r = check_id(H5Gcreate2(file, "/run", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                      where + ": cannot create /run");
  Handle gcpl = check_id(H5Pcreate(H5P_GROUP_CREATE), "H5Pcreate");
  check(H5Pset_local_heap_size_hint(gcpl, 16 * 2 * kSnodHalf), "H5Pset_local_heap_size_hint");
  Handle s = check_id(H5Gcreate2(file, "/snapshots", H5P_DEFAULT, gcpl, H5P_DEFAULT),
                      where + ": cannot create /snapshots");
  check(H5Fflush(file, H5F_SCOPE_GLOBAL), "cannot flush " + where);
  if (opt.xdmf) detail::write_file_atomically(xdmf_path, detail::make_xdmf(h5_name, grid, {}));
}

SnapshotWriter::~SnapshotWriter() {
  if (!impl_) return;
  bool reported;
  {
    std::lock_guard<std::mutex> lk(impl_->mutex);
    reported = impl_->error_reported;
  }
  try {
    close();
  } catch (const std::exception& e) {
    if (!reported)
      std::fprintf(stderr, "dfluid: snapshot writer for '%s' failed: %s\n", impl_->path.c_str(),
                   e.what());
  }
  impl_->release_buffers();
}

// ---------------------------------------------------------- caller's side ----

void SnapshotWriter::set_run_attribute(const std::string& name, double value) {
  impl_->add_run_attr(name, RunAttr{name, 0, value, 0, {}});
}
void SnapshotWriter::set_run_attribute(const std::string& name, std::int64_t value) {
  impl_->add_run_attr(name, RunAttr{name, 1, 0, value, {}});
}
void SnapshotWriter::set_run_attribute(const std::string& name, const std::string& value) {
  impl_->add_run_attr(name, RunAttr{name, 2, 0, 0, value});
}

void SnapshotWriter::Impl::add_run_attr(const std::string& name, RunAttr a) {
  if (name.empty() || name.find('/') != std::string::npos || name.find('.') == 0)
    throw InvalidArgument("set_run_attribute: bad attribute name '" + name + "'");
  std::lock_guard<std::mutex> lk(mutex);
  if (first_enqueued || closed)
    throw InvalidArgument("set_run_attribute('" + name +
                          "'): run attributes must be set before the first write()");
  for (RunAttr& r : run_attrs)
    if (r.name == name) {
      r = std::move(a);
      return;
    }
  run_attrs.push_back(std::move(a));
}

bool SnapshotWriter::due(std::int64_t step) const {
  return step % impl_->opt.interval == 0;
}

void SnapshotWriter::Impl::rethrow_locked() {
  if (error) {
    error_reported = true;
    std::rethrow_exception(error);
  }
}

bool SnapshotWriter::Impl::selected(const NamedField& f) const {
  if (opt.fields.empty()) return true;
  for (const std::string& s : opt.fields)
    if (s == f.name || (!f.vector_base.empty() && s == f.vector_base)) return true;
  return false;
}

bool SnapshotWriter::write(const Context& ctx, std::int64_t step, double time, double dt,
                           const std::vector<NamedField>& fields) {
  Impl& m = *impl_;
  {
    std::lock_guard<std::mutex> lk(m.mutex);
    if (m.closed) throw IoError("snapshot file '" + m.path + "': write() after close()");
    m.rethrow_locked();
  }
  if (step < 0) throw InvalidArgument("write: step = " + std::to_string(step) + " must be >= 0");
  if (!due(step)) return false;
  if (m.steps.count(step))
    throw InvalidArgument("write: snapshot of step " + std::to_string(step) +
                          " was already written to '" + m.path + "'");
  std::vector<const NamedField*> sel;
  std::set<std::string> names;
  for (const NamedField& f : fields) {
    if (!m.selected(f)) continue;
    m.validate(f);
    if (!names.insert(f.name).second)
      throw InvalidArgument("write: field name '" + f.name + "' given twice");
    sel.push_back(&f);
  }
  for (const NamedField* f : sel)
    if (!f->vector_base.empty() && names.count(f->vector_base + "_cell"))
      throw InvalidArgument("write: field name '" + f->vector_base +
                            "_cell' clashes with the derived cell-centred vector");

  int slot = m.acquire_slot();  // blocks while queue_depth snapshots are in flight
  try {
    m.fill_slot(ctx, slot, step, time, dt, sel);
  } catch (...) {
    std::lock_guard<std::mutex> lk(m.mutex);
    m.free_slots.push_back(slot);
    m.cv.notify_all();
    throw;
  }
  {
    std::lock_guard<std::mutex> lk(m.mutex);
    m.first_enqueued = true;
    m.steps.insert(step);
    m.queue.push_back(slot);
  }
  m.cv.notify_all();
  return true;
}

void SnapshotWriter::Impl::validate(const NamedField& f) const {
  const std::string who = "write: field '" + f.name + "'";
  if (f.name.empty()) throw InvalidArgument("write: a field has an empty name");
  for (char c : f.name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_'))
      throw InvalidArgument(who + ": names may hold letters, digits and '_' only");
  if (!f.f32 == !f.f64) throw InvalidArgument(who + ": refers to no field");
  bool empty = f.f32 ? f.f32->empty() : f.f64->empty();
  if (empty) throw InvalidArgument(who + ": field is empty (not allocated)");
  const Grid& g = f.f32 ? f.f32->grid() : f.f64->grid();
  if (g != grid)
    throw ShapeMismatch(who + " is on " + g.describe() + " but the file '" + path + "' is for " +
                        grid.describe());
}

int SnapshotWriter::Impl::acquire_slot() {
  std::unique_lock<std::mutex> lk(mutex);
  cv.wait(lk, [&] { return !free_slots.empty() || error; });
  rethrow_locked();
  int s = free_slots.back();
  free_slots.pop_back();
  return s;
}

void SnapshotWriter::flush() {
  Impl& m = *impl_;
  std::unique_lock<std::mutex> lk(m.mutex);
  m.cv.wait(lk, [&] {
    return m.error || (m.queue.empty() && int(m.free_slots.size()) == m.opt.queue_depth);
  });
  m.rethrow_locked();
}

void SnapshotWriter::close() {
  Impl& m = *impl_;
  {
    std::unique_lock<std::mutex> lk(m.mutex);
    if (m.closed && !m.thread.joinable()) {
      m.rethrow_locked();
      return;
    }
    m.closed = true;
  }
  m.cv.notify_all();
  if (m.thread.joinable()) m.thread.join();
  {
    H5Lock lock;
    try {
      if (!m.error && !m.run_attrs_written) m.write_run_attrs();
      if (m.file.valid()) m.file.close_or_throw("cannot close snapshot file '" + m.path + "'");
    } catch (...) {
      std::lock_guard<std::mutex> lk(m.mutex);
      if (!m.error) m.error = std::current_exception();
    }
  }
  std::lock_guard<std::mutex> lk(m.mutex);
  m.rethrow_locked();
}

const std::string& SnapshotWriter::path() const {
  return impl_->path;
}
const std::string& SnapshotWriter::xdmf_path() const {
  return impl_->xdmf_path;
}
const Grid& SnapshotWriter::grid() const {
  return impl_->grid;
}

// ------------------------------------------------------------ writer thread ----

void SnapshotWriter::Impl::run() {
  for (;;) {
    int slot;
    {
      std::unique_lock<std::mutex> lk(mutex);
      cv.wait(lk, [&] { return !queue.empty() || closed; });
      if (queue.empty()) return;  // closed and drained
      slot = queue.front();
    }
    bool failed;
    {
      std::lock_guard<std::mutex> lk(mutex);
      failed = bool(error);
    }
    if (!failed) {
      try {
        write_slot(slots[static_cast<std::size_t>(slot)]);
      } catch (...) {
        std::lock_guard<std::mutex> lk(mutex);
        error = std::current_exception();
      }
    }
    {
      std::lock_guard<std::mutex> lk(mutex);
      queue.pop_front();
      free_slots.push_back(slot);
    }
    cv.notify_all();
  }
}

void SnapshotWriter::Impl::write_run_attrs() {
  const std::string where = "snapshot file '" + path + "', group /run";
  Handle r = check_id(H5Gopen2(file, "/run", H5P_DEFAULT), where + ": cannot open");
  for (const RunAttr& a : run_attrs) {
    if (a.type == 0) write_attr(r, a.name.c_str(), a.d, where);
    if (a.type == 1) write_attr(r, a.name.c_str(), a.i, where);
    if (a.type == 2) write_attr(r, a.name.c_str(), a.s, where);
  }
  run_attrs_written = true;
}

}  // namespace dfluid::io
