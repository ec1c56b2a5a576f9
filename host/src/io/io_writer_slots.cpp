// SnapshotWriter, per snapshot: copying fields into a slot (caller's thread) and
// writing a slot to the file (writer thread).
#include <algorithm>
#include <cstring>
#include <map>

#include "dfluid/build_config.hpp"
#include "io/io_writer_impl.hpp"

#if DFLUID_WITH_CUDA
#include <cuda_runtime_api.h>

#include "core/cuda_check.hpp"
#endif

namespace dfluid::io {

using detail::check;
using detail::check_id;
using detail::H5Lock;
using detail::Handle;
using detail::write_attr;

namespace {

constexpr std::size_t kAlign = 256;

#if DFLUID_WITH_CUDA
/// detail::cuda_check with this file's prefix on the message.
void writer_check(cudaError_t e, const char* what) {
  dfluid::detail::cuda_check(e, std::string("snapshot writer: ") + what);
}
void writer_warn(cudaError_t e, const char* what) {
  dfluid::detail::cuda_warn(e, (std::string("snapshot writer: ") + what).c_str());
}
#endif

/// Copies a (possibly strided) host field into contiguous memory at dst.
template <class T>
void copy_host(const Field<T>& f, unsigned char* dst) {
  View<const T> v = f.view();
  T* out = reinterpret_cast<T*>(dst);
  if (v.contiguous()) {
    std::memcpy(out, v.data, sizeof(T) * static_cast<std::size_t>(v.size()));
    return;
  }
  for (int k = 0; k < v.nz; ++k)
    for (int j = 0; j < v.ny; ++j)
      std::memcpy(out + (Index(k) * v.ny + j) * v.nx, v.data + v.offset(0, j, k),
                  sizeof(T) * static_cast<std::size_t>(v.nx));
}

#if DFLUID_WITH_CUDA
/// Enqueues a device-to-device copy of a (possibly strided) field into contiguous memory.
template <class T>
void copy_device(const Field<T>& f, unsigned char* dst, cudaStream_t st) {
  View<const T> v = f.view();
  if (v.contiguous()) {
    writer_check(cudaMemcpyAsync(dst, v.data, sizeof(T) * std::size_t(v.size()),
                                 cudaMemcpyDeviceToDevice, st),
                 "cudaMemcpyAsync (staging)");
    return;
  }
  for (int k = 0; k < v.nz; ++k)
    writer_check(cudaMemcpy2DAsync(dst + sizeof(T) * std::size_t(k) * v.nx * v.ny, sizeof(T) * v.nx,
                                   v.data + v.offset(0, 0, k), sizeof(T) * std::size_t(v.sy),
                                   sizeof(T) * v.nx, v.ny, cudaMemcpyDeviceToDevice, st),
                 "cudaMemcpy2DAsync (staging)");
}
#endif

/// Chunk shape: whole innermost rows stacked outward up to `target` bytes.
std::vector<hsize_t> chunk_shape(const std::vector<hsize_t>& shape, std::size_t elem,
                                 std::size_t target) {
  std::vector<hsize_t> c(shape.size(), 1);
  std::size_t budget = std::max<std::size_t>(1, target / elem);  // elements per chunk
  for (std::size_t d = shape.size(); d-- > 0;) {
    hsize_t take = std::min<hsize_t>(shape[d], std::max<std::size_t>(1, budget));
    c[d] = take;
    budget = take < shape[d] ? 1 : budget / std::max<hsize_t>(1, take);
  }
  return c;
}

template <class T>
const T* at(const Slot& s, const SlotField& f) {
  return reinterpret_cast<const T*>(s.host + f.offset);
}

/// Cell-centred average of a vector's components, [cells][3] (zero beyond dim).
template <class T>
std::vector<T> cell_vector(const Slot& s, const Grid& g, const std::array<const SlotField*, 3>& c) {
  const Index cells = g.cells();
  std::vector<T> out(static_cast<std::size_t>(cells) * 3, T(0));
  for (int a = 0; a < g.dim; ++a) {
    const SlotField& f = *c[a];
    const bool face = f.loc != Location::Cell;
    const std::array<int, 3> e = f.ext;
    for (int k = 0; k < g.n[2]; ++k)
      for (int j = 0; j < g.n[1]; ++j)
        for (int i = 0; i < g.n[0]; ++i) {
          std::array<int, 3> lo{i, j, k};
          auto value = [&](const std::array<int, 3>& p) -> double {
            Index idx = p[0] + Index(e[0]) * (p[1] + Index(e[1]) * p[2]);
            return f.is_double ? at<double>(s, f)[idx] : double(at<float>(s, f)[idx]);
          };
          double v = value(lo);
          if (face) {
            std::array<int, 3> hi = lo;
            hi[a] = (hi[a] + 1) % e[a];  // wraps only on periodic axes (e = n there)
            v = 0.5 * (v + value(hi));
          }
          out[static_cast<std::size_t>(i + Index(g.n[0]) * (j + Index(g.n[1]) * k)) * 3 + a] =
              static_cast<T>(v);
        }
  }
  return out;
}

}  // namespace

void SnapshotWriter::Impl::fill_slot(const Context& ctx, int slot_index, std::int64_t step,
                                     double time, double dt,
                                     const std::vector<const NamedField*>& fields) {
  Slot& s = slots[static_cast<std::size_t>(slot_index)];
  s.step = step;
  s.time = time;
  s.dt = dt;
  s.fields.clear();
  s.wait_event = false;
  std::size_t total = 0;
  bool any_device = false;
  for (const NamedField* nf : fields) {
    SlotField f;
    f.name = nf->name;
    f.vector_base = nf->vector_base;
    f.kind = nf->kind;
    f.component = nf->component;
    f.is_double = nf->f64 != nullptr;
    f.loc = f.is_double ? nf->f64->location() : nf->f32->location();
    f.ext = f.is_double ? nf->f64->extents() : nf->f32->extents();
    f.bytes = std::size_t(f.ext[0]) * f.ext[1] * f.ext[2] * (f.is_double ? 8 : 4);
    f.offset = total;
    total += (f.bytes + kAlign - 1) / kAlign * kAlign;
    MemorySpace sp = f.is_double ? nf->f64->space() : nf->f32->space();
    any_device = any_device || sp == MemorySpace::Device;
    s.fields.push_back(std::move(f));
  }
  total = std::max<std::size_t>(total, kAlign);

  // Host buffer: pinned when device data comes in (fast, truly asynchronous copies).
  if (s.host_bytes < total || (any_device && !s.host_pinned)) {
    if (s.host) {
#if DFLUID_WITH_CUDA
      if (s.host_pinned) writer_check(cudaFreeHost(s.host), "cudaFreeHost");
#endif
      if (!s.host_pinned)
        dfluid::detail::deallocate_bytes(s.host, s.host_bytes, MemorySpace::Host, s.host_alloc);
      s.host = nullptr;
      s.host_bytes = 0;
    }
    if (any_device) {
#if DFLUID_WITH_CUDA
      void* p = nullptr;
      writer_check(cudaMallocHost(&p, total), "cudaMallocHost");
      s.host = static_cast<unsigned char*>(p);
      s.host_pinned = true;
#endif
    } else {
      s.host_alloc = current_allocator();
      s.host =
          static_cast<unsigned char*>(dfluid::detail::allocate_bytes(total, MemorySpace::Host));
      s.host_pinned = false;
    }
    s.host_bytes = total;
  }

  for (std::size_t i = 0; i < fields.size(); ++i) {
    const NamedField& nf = *fields[i];
    MemorySpace sp = nf.f64 ? nf.f64->space() : nf.f32->space();
    if (sp == MemorySpace::Host) {
      if (nf.f64)
        copy_host(*nf.f64, s.host + s.fields[i].offset);
      else
        copy_host(*nf.f32, s.host + s.fields[i].offset);
    }
  }
  if (!any_device) return;

#if DFLUID_WITH_CUDA
  // Device data: one device-to-device copy on the context's stream (the
  // simulation may overwrite its fields right after), then device-to-pinned on
  // the writer's own stream, which the simulation never waits for.
  if (s.staging_bytes < total) {
    if (s.staging)
      dfluid::detail::deallocate_bytes(s.staging, s.staging_bytes, MemorySpace::Device,
                                       s.staging_alloc);
    s.staging = nullptr;
    s.staging_bytes = 0;
    s.staging_alloc = current_allocator();
    s.staging = dfluid::detail::allocate_bytes(total, MemorySpace::Device);
    s.staging_bytes = total;
  }
  if (!io_stream) {
    cudaStream_t st = nullptr;
    writer_check(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking), "cudaStreamCreate");
    io_stream = st;
  }
  if (!s.staged_event) {
    cudaEvent_t e1 = nullptr, e2 = nullptr;
    writer_check(cudaEventCreateWithFlags(&e1, cudaEventDisableTiming), "cudaEventCreate");
    writer_check(cudaEventCreateWithFlags(&e2, cudaEventDisableTiming), "cudaEventCreate");
    s.staged_event = e1;
    s.done_event = e2;
  }
  auto* staging = static_cast<unsigned char*>(s.staging);
  cudaStream_t sim = ctx.on_gpu() ? static_cast<cudaStream_t>(ctx.stream()) : nullptr;
  cudaStream_t io = static_cast<cudaStream_t>(io_stream);
  for (std::size_t i = 0; i < fields.size(); ++i) {
    const NamedField& nf = *fields[i];
    MemorySpace sp = nf.f64 ? nf.f64->space() : nf.f32->space();
    if (sp != MemorySpace::Device) continue;
    if (nf.f64)
      copy_device(*nf.f64, staging + s.fields[i].offset, sim);
    else
      copy_device(*nf.f32, staging + s.fields[i].offset, sim);
  }
  cudaEvent_t staged = static_cast<cudaEvent_t>(s.staged_event);
  writer_check(cudaEventRecord(staged, sim), "cudaEventRecord");
  writer_check(cudaStreamWaitEvent(io, staged, 0), "cudaStreamWaitEvent");
  for (std::size_t i = 0; i < fields.size(); ++i) {
    const NamedField& nf = *fields[i];
    MemorySpace sp = nf.f64 ? nf.f64->space() : nf.f32->space();
    if (sp != MemorySpace::Device) continue;
    const SlotField& f = s.fields[i];
    writer_check(
        cudaMemcpyAsync(s.host + f.offset, staging + f.offset, f.bytes, cudaMemcpyDeviceToHost, io),
        "cudaMemcpyAsync (device to pinned host)");
  }
  writer_check(cudaEventRecord(static_cast<cudaEvent_t>(s.done_event), io), "cudaEventRecord");
  s.wait_event = true;
#else
  (void)ctx;
  throw CudaError("snapshot writer: device memory given, but dfluid was built without CUDA");
#endif
}

void SnapshotWriter::Impl::release_buffers() {
  for (Slot& s : slots) {
#if DFLUID_WITH_CUDA
    // Also runs from the destructor: report, do not throw.
    if (s.host && s.host_pinned) writer_warn(cudaFreeHost(s.host), "cudaFreeHost");
    if (s.staged_event)
      writer_warn(cudaEventDestroy(static_cast<cudaEvent_t>(s.staged_event)), "cudaEventDestroy");
    if (s.done_event)
      writer_warn(cudaEventDestroy(static_cast<cudaEvent_t>(s.done_event)), "cudaEventDestroy");
#endif
    if (s.host && !s.host_pinned)
      dfluid::detail::deallocate_bytes(s.host, s.host_bytes, MemorySpace::Host, s.host_alloc);
    if (s.staging)
      dfluid::detail::deallocate_bytes(s.staging, s.staging_bytes, MemorySpace::Device,
                                       s.staging_alloc);
    s = Slot{};
  }
#if DFLUID_WITH_CUDA
  if (io_stream)
    writer_warn(cudaStreamDestroy(static_cast<cudaStream_t>(io_stream)), "cudaStreamDestroy");
#endif
  io_stream = nullptr;
}

void SnapshotWriter::Impl::write_slot(Slot& s) {
#if DFLUID_WITH_CUDA
  if (s.wait_event)
    writer_check(cudaEventSynchronize(static_cast<cudaEvent_t>(s.done_event)),
                 "waiting for the device-to-host copy");
#endif
  H5Lock lock;
  const std::string fw = "snapshot file '" + path + "'";
  if (!run_attrs_written) write_run_attrs();
  bool any32 = false, any64 = false;
  for (const SlotField& f : s.fields)
    (f.is_double ? any64 : any32) = true;
  if (!root_attrs_written) {
    write_attr(file, "dt", s.dt, fw);
    if (opt.precision == Precision::AsStored)
      write_attr(file, "precision",
                 std::string(any32 && any64 ? "mixed"
                             : any64        ? "float64"
                                            : "float32"),
                 fw);
    root_attrs_written = true;
  }
  const std::string gname = detail::snapshot_group_name(s.step);
  // Two phases, so that a run killed at any point leaves every earlier snapshot
  // readable: (1) the snapshot is built as an anonymous group and flushed: only
  // new blocks are written, nothing that earlier snapshots depend on; (2) it is
  // linked into /snapshots and flushed again: this rewrites /snapshots' symbol
  // table node and name heap in place (one block each, pre-sized so they do not
  // move or split). HDF5's metadata cache holds every change until a flush
  // (evictions off), so nothing reaches the file in between.
  Handle g = check_id(H5Gcreate_anon(file, H5P_DEFAULT, H5P_DEFAULT),
                      fw + ": cannot create group " + gname);
  write_attr(g, "step", std::int64_t(s.step), fw + ", " + gname);
  write_attr(g, "time", s.time, fw + ", " + gname);
  write_attr(g, "dt", s.dt, fw + ", " + gname);

  detail::XdmfSnapshot xs;
  xs.step = s.step;
  xs.time = s.time;
  auto file_type = [&](bool is_double) {
    if (opt.precision == Precision::Float32) return H5T_IEEE_F32LE;
    if (opt.precision == Precision::Float64) return H5T_IEEE_F64LE;
    return is_double ? H5T_IEEE_F64LE : H5T_IEEE_F32LE;
  };
  auto write_dataset = [&](const std::string& name, const std::vector<hsize_t>& shape,
                           bool is_double, const void* data) {
    const std::string dname = gname + "/" + name;
    const std::string where = fw + ", dataset " + dname;
    hid_t ftype = file_type(is_double);
    Handle space =
        check_id(H5Screate_simple(int(shape.size()), shape.data(), nullptr), where + ": dataspace");
    Handle dcpl = check_id(H5Pcreate(H5P_DATASET_CREATE), "H5Pcreate");
    std::vector<hsize_t> chunk = chunk_shape(shape, H5Tget_size(ftype), opt.chunk_bytes);
    check(H5Pset_chunk(dcpl, int(chunk.size()), chunk.data()), where + ": chunking");
    if (opt.gzip_level > 0) {
      check(H5Pset_shuffle(dcpl), where + ": shuffle filter");
      check(H5Pset_deflate(dcpl, unsigned(opt.gzip_level)), where + ": gzip filter");
    }
    Handle d = check_id(H5Dcreate2(g, name.c_str(), ftype, space, H5P_DEFAULT, dcpl, H5P_DEFAULT),
                        where + ": cannot create");
    check(H5Dwrite(d, is_double ? H5T_NATIVE_DOUBLE : H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL,
                   H5P_DEFAULT, data),
          where + ": cannot write");
    xs.attributes.push_back({name, dname, false, int(H5Tget_size(ftype))});
    return d;
  };

  std::map<std::string, std::array<const SlotField*, 3>> vectors;
  for (const SlotField& f : s.fields) {
    Handle d = write_dataset(f.name, detail::dataset_shape(grid.dim, f.ext), f.is_double,
                             s.host + f.offset);
    const std::string where = fw + ", dataset " + gname + "/" + f.name;
    write_attr(d, "kind", std::string(to_string(f.kind)), where);
    write_attr(d, "location", std::string(detail::location_attr(f.loc)), where);
    if (f.loc != Location::Cell) xs.attributes.pop_back();  // not on the cell mesh
    if (!f.vector_base.empty() && f.component >= 0 && f.component < 3) {
      write_attr(d, "component", std::int64_t(f.component), where);
      auto& v = vectors.emplace(f.vector_base, std::array<const SlotField*, 3>{}).first->second;
      v[f.component] = &f;
    }
  }
  if (opt.cell_vectors) {
    for (const auto& [base, comps] : vectors) {
      bool complete = true, dbl = false;
      for (int a = 0; a < grid.dim; ++a) {
        complete = complete && comps[a] &&
                   (comps[a]->loc == Location::Cell || comps[a]->loc == face_location(a));
        dbl = dbl || (comps[a] && comps[a]->is_double);
      }
      if (!complete) continue;
      std::vector<hsize_t> shape = detail::dataset_shape(grid.dim, grid.n);
      shape.push_back(3);
      Handle d;
      const std::string name = base + "_cell";
      if (dbl) {
        std::vector<double> v = cell_vector<double>(s, grid, comps);
        d = write_dataset(name, shape, true, v.data());
      } else {
        std::vector<float> v = cell_vector<float>(s, grid, comps);
        d = write_dataset(name, shape, false, v.data());
      }
      xs.attributes.back().name = base;
      xs.attributes.back().vector = true;
      const std::string where = fw + ", dataset " + gname + "/" + name;
      write_attr(d, "kind", std::string(to_string(comps[0]->kind)), where);
      write_attr(d, "location", std::string("cell"), where);
      write_attr(d, "derived",
                 std::string("cell-centred average of the face components, [..][3] = (x, y, z)"),
                 where);
    }
  }
  check(H5Fflush(file, H5F_SCOPE_GLOBAL),
        fw + ": cannot flush after step " + std::to_string(s.step));
  check(H5Olink(g, file, gname.c_str(), H5P_DEFAULT, H5P_DEFAULT),
        fw + ": cannot link group " + gname);
  g.reset();
  check(H5Fflush(file, H5F_SCOPE_GLOBAL),
        fw + ": cannot flush after step " + std::to_string(s.step));
  if (++snapshots_since_open >= kReopenEvery) reopen();
  xdmf.push_back(std::move(xs));
  if (opt.xdmf) detail::write_file_atomically(xdmf_path, detail::make_xdmf(h5_name, grid, xdmf));
}

}  // namespace dfluid::io
