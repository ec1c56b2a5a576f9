// HDF5 field snapshots with an XDMF sidecar; restarts and inverse-problem targets.
//
// One file per run holds a time series of snapshots. Layout (format "dfluid.snapshots" v1):
//
//   /                        attributes: format, format_version, dfluid_version, precision,
//                            dt (of the first snapshot), data_order
//   /grid                    attributes: dim, cells [nx,ny,nz], shape (C order, dim entries),
//                            dx, origin [x0,y0,z0], boundary_x/_y/_z ("wall/open", low/high)
//   /run                     attributes: the run's parameters (set_run_attribute)
//   /snapshots/<step>        <step> zero-padded to 8 digits; attributes step, time, dt
//       <name>               one dataset per field, attributes kind, location
//       <base>_x, _y, _z     a MAC vector (velocity, force, ...) as stored: face arrays
//       <base>_cell          derived: the vector averaged to cell centres, [..][3]
//
// Every array is stored in C order with x fastest: a 3D cell field has shape
// [nz][ny][nx] (h5py shows (z, y, x)), a 2D one [ny][nx], a 1D one [nx]. Face
// arrays have the face extents (n+1 along their axis, n when periodic).
//
// The writer is asynchronous: write() copies the fields into buffers the writer
// owns (GPU path: a device-to-device copy on the context stream, then
// device-to-pinned-host on the writer's own stream) and returns; a host thread
// writes the HDF5 datasets, flushes the file and atomically rewrites the XDMF
// sidecar (<file>.xmf: temporary file, then rename). write() blocks only when
// `queue_depth` snapshots are already in flight. An error in the thread is
// re-thrown by the next write(), flush() or close().
//
// A run killed at any moment leaves a file in which every snapshot the writer
// thread finished (e.g. every one before a flush() that returned) is
// readable: HDF5 metadata reaches the file only at flushes; each snapshot
// is built as an anonymous group, flushed, then linked into /snapshots and
// flushed again. The file uses HDF5's default (1.8-compatible) format, so a
// crashed file opens without h5clear.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "dfluid/context.hpp"
#include "dfluid/error.hpp"
#include "dfluid/field.hpp"
#include "dfluid/grid.hpp"

namespace dfluid::io {

/// A file could not be created, written or read, or holds something other than
/// what was asked for. The message names the file, the dataset and, for HDF5
/// failures, the HDF5 error stack.
class IoError : public Error {
 public:
  using Error::Error;
};

/// What a field is; stored as the dataset's "kind" attribute.
enum class FieldKind { Scalar, Velocity, Pressure, Force, Gradient };
const char* to_string(FieldKind k);

/// Precision of the datasets in the file.
///  AsStored: the field's own type (bitwise round trips).
///  Float32 / Float64: converted by HDF5 while writing.
enum class Precision { AsStored, Float32, Float64 };

/// A field to write, by reference: the field must stay alive and unchanged until
/// write() returns (write() copies it). `name` is the dataset name: letters,
/// digits and '_'. `vector_base`/`component` mark one component of a vector
/// (set by add_vector); complete face-centred vectors also get <base>_cell.
struct NamedField {
  NamedField(std::string name, const Field<float>& f, FieldKind kind = FieldKind::Scalar);
  NamedField(std::string name, const Field<double>& f, FieldKind kind = FieldKind::Scalar);

  std::string name;
  FieldKind kind = FieldKind::Scalar;
  const Field<float>* f32 = nullptr;
  const Field<double>* f64 = nullptr;
  std::string vector_base;  ///< e.g. "velocity" for velocity_x; empty for scalars
  int component = -1;       ///< axis of the vector component, -1 for scalars
};

/// Appends <base>_x, <base>_y (and <base>_z in 3D) for the components of `u`.
void add_vector(std::vector<NamedField>& out, const std::string& base, const MacVelocity<float>& u,
                FieldKind kind = FieldKind::Velocity);
void add_vector(std::vector<NamedField>& out, const std::string& base, const MacVelocity<double>& u,
                FieldKind kind = FieldKind::Velocity);
/// Same for a cell-centred vector (no derived <base>_cell: the components are cell data already).
void add_vector(std::vector<NamedField>& out, const std::string& base, const CellVector<float>& v,
                FieldKind kind);
void add_vector(std::vector<NamedField>& out, const std::string& base, const CellVector<double>& v,
                FieldKind kind);

struct WriterOptions {
  /// write() stores a snapshot when step % interval == 0.
  int interval = 1;
  /// Names to write: dataset names ("density") or vector bases ("velocity").
  /// Empty: every field passed to write().
  std::vector<std::string> fields;
  /// gzip level 0 (off, the default: deflate at ~100 MB/s on one core is slower
  /// than a GPU produces 128^3 snapshots) to 9; with the shuffle filter when > 0.
  int gzip_level = 0;
  /// Target chunk size: chunks are whole x-rows, stacked in y then z up to this
  /// many bytes (default 1 MiB, HDF5's default chunk cache size).
  std::size_t chunk_bytes = std::size_t(1) << 20;
  /// Snapshots in flight (copied, not yet on disk); write() blocks beyond this.
  int queue_depth = 2;
  Precision precision = Precision::AsStored;
  /// Also write <base>_cell for complete face-centred vectors (the XDMF vectors use it).
  bool cell_vectors = true;
  /// Write the XDMF sidecar next to the file.
  bool xdmf = true;
};

/// Writes a run's snapshots to one HDF5 file (created, or truncated if it exists).
/// Not thread-safe: call from one thread.
class SnapshotWriter {
 public:
  /// Creates the file and writes /grid and the root attributes; throws IoError
  /// (with the path and the HDF5 message) when it cannot.
  SnapshotWriter(const std::string& path, const Grid& grid, WriterOptions options = {});
  /// Drains the queue and closes the file. An error not yet reported is printed
  /// to stderr (a destructor cannot throw): call close() to get it as an exception.
  ~SnapshotWriter();
  SnapshotWriter(const SnapshotWriter&) = delete;
  SnapshotWriter& operator=(const SnapshotWriter&) = delete;

  /// A run parameter, stored as an attribute of /run. Call before the first write().
  void set_run_attribute(const std::string& name, double value);
  void set_run_attribute(const std::string& name, std::int64_t value);
  void set_run_attribute(const std::string& name, int value) {
    set_run_attribute(name, std::int64_t(value));
  }
  void set_run_attribute(const std::string& name, const std::string& value);
  void set_run_attribute(const std::string& name, const char* value) {
    set_run_attribute(name, std::string(value));
  }

  /// True when write() would store `step` (step % interval == 0).
  bool due(std::int64_t step) const;
  /// Stores the snapshot of `step` if due; returns whether it did. Fields must
  /// be on the writer's grid and in ctx's memory space. Returns once the fields
  /// are copied; blocks only when the queue is full. Re-throws an earlier error
  /// of the writer thread.
  bool write(const Context& ctx, std::int64_t step, double time, double dt,
             const std::vector<NamedField>& fields);
  /// Host wait: returns once every queued snapshot is on disk (file flushed,
  /// sidecar renamed); re-throws a writer error.
  void flush();
  /// flush(), then closes the file. Idempotent.
  void close();

  const std::string& path() const;
  /// The sidecar's path: the file's path with .h5/.hdf5 replaced by .xmf.
  const std::string& xdmf_path() const;
  const Grid& grid() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

/// The XDMF sidecar path for an HDF5 path ("run.h5" -> "run.xmf").
std::string xdmf_path_for(const std::string& h5_path);

// ---------------------------------------------------------------- reading ----

/// Step value meaning "the last snapshot in the file".
inline constexpr std::int64_t kLatestStep = -1;

struct SnapshotInfo {
  std::int64_t step = 0;
  double time = 0, dt = 0;
  std::vector<std::string> fields;  ///< dataset names, sorted
};

/// The grid stored in /grid.
Grid read_grid(const std::string& path);
/// Every complete snapshot in the file, by increasing step. A snapshot that
/// cannot be opened (the one a killed run was linking when it died) is left out.
std::vector<SnapshotInfo> list_snapshots(const std::string& path);
/// The snapshot of `step` (kLatestStep: the last one); IoError if absent.
SnapshotInfo read_snapshot_info(const std::string& path, std::int64_t step);
/// Run parameters as strings ("0.5", "128", "maccormack").
std::vector<std::pair<std::string, std::string>> read_run_attributes(const std::string& path);

/// Reads dataset `name` of snapshot `step` into a new host field on `expected`
/// (location from the dataset's "location" attribute). Refuses, with an IoError
/// naming the file, the dataset, the expected and the found shape, a dataset
/// whose shape does not match `expected`, and a file whose /grid differs from
/// `expected` in dim, cells, dx or origin (no resampling). The dataset's type
/// must be T unless `convert` is true.
template <class T>
Field<T> read_field(const std::string& path, std::int64_t step, const std::string& name,
                    const Grid& expected, bool convert = false);
/// Reads into an existing field (any memory space, copied on ctx's stream); its
/// grid and location are the expected ones.
template <class T>
void read_field_into(const Context& ctx, const std::string& path, std::int64_t step,
                     const std::string& name, Field<T>& dst, bool convert = false);
/// Restart: reads <base>_x, _y, _z into u.
template <class T>
void read_vector_into(const Context& ctx, const std::string& path, std::int64_t step,
                      const std::string& base, MacVelocity<T>& u, bool convert = false);

}  // namespace dfluid::io
