// Private state of SnapshotWriter, shared by io_writer.cpp (queue, thread) and
// io_writer_slots.cpp (copies into slots, HDF5 writes of one snapshot).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "dfluid/io/hdf5.hpp"
#include "dfluid/memory.hpp"
#include "io/io_hdf5_util.hpp"
#include "io/io_xdmf.hpp"

namespace dfluid::io {

struct RunAttr {
  std::string name;
  int type = 0;  // 0 double, 1 int64, 2 string
  double d = 0;
  std::int64_t i = 0;
  std::string s;
};

/// One field's copy inside a slot.
struct SlotField {
  std::string name, vector_base;
  FieldKind kind = FieldKind::Scalar;
  Location loc = Location::Cell;
  int component = -1;
  bool is_double = false;
  std::array<int, 3> ext{1, 1, 1};
  std::size_t offset = 0, bytes = 0;  ///< where it lies in the slot's buffers
};

/// Buffers for one snapshot in flight. Reused from snapshot to snapshot; they
/// grow when a snapshot needs more.
struct Slot {
  std::int64_t step = 0;
  double time = 0, dt = 0;
  std::vector<SlotField> fields;
  unsigned char* host = nullptr;  ///< pinned on the GPU path, aligned host memory otherwise
  std::size_t host_bytes = 0;
  bool host_pinned = false;
  Allocator host_alloc{};   ///< the hook that made `host` (when not pinned)
  void* staging = nullptr;  ///< device staging buffer (through the allocator hook)
  std::size_t staging_bytes = 0;
  Allocator staging_alloc{};
  void* staged_event = nullptr;  ///< cudaEvent_t: on-device copies done (context stream)
  void* done_event = nullptr;    ///< cudaEvent_t: device-to-host copy done (writer stream)
  bool wait_event = false;       ///< the writer thread must wait on done_event
};

struct SnapshotWriter::Impl {
  std::string path, xdmf_path, h5_name;
  Grid grid;
  WriterOptions opt;
  detail::Handle file;  // touched by the writer thread only, once it runs

  std::mutex mutex;  // guards everything below
  std::condition_variable cv;
  std::vector<Slot> slots;
  std::vector<int> free_slots;
  std::deque<int> queue;  // slots waiting to be written (front: being written)
  std::exception_ptr error;
  bool error_reported = false;
  bool closed = false;
  bool first_enqueued = false;
  std::set<std::int64_t> steps;
  std::vector<RunAttr> run_attrs;
  std::thread thread;

  // writer thread state
  bool run_attrs_written = false;
  bool root_attrs_written = false;
  std::vector<detail::XdmfSnapshot> xdmf;
  void* io_stream = nullptr;  // cudaStream_t for device-to-host copies, created lazily

  int snapshots_since_open = 0;
  static constexpr int kReopenEvery = 32;
  static constexpr unsigned kSnodHalf = 512;  // symbol-table leaf K (2K links per node)  // bounds
                                              // the metadata cache (evictions are off)

  detail::Handle make_fapl();
  void create_file();
  void reopen();
  void add_run_attr(const std::string& name, RunAttr a);
  bool selected(const NamedField& f) const;
  void validate(const NamedField& f) const;
  void rethrow_locked();
  int acquire_slot();
  void fill_slot(const Context& ctx, int slot, std::int64_t step, double time, double dt,
                 const std::vector<const NamedField*>& fields);
  void run();
  void write_slot(Slot& s);
  void write_run_attrs();
  void release_buffers();
};

}  // namespace dfluid::io
