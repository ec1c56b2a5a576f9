// Checkpoint slot memory of a rollout: device buffers, pinned host buffers and disk
// files, with the staging-buffer / copy-stream protocol described in rollout_slots.hpp.
#include "rollout/rollout_slots.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <system_error>
#include <utility>

#include "dfluid/error.hpp"

#if DFLUID_WITH_CUDA
#include <cuda_runtime_api.h>

#include "core/cuda_check.hpp"
#endif

namespace dfluid::detail {
namespace {

using checkpoint::Level;

#if DFLUID_WITH_CUDA
/// detail::cuda_check with this file's prefix on the message.
void slot_check(cudaError_t e, const char* what) {
  detail::cuda_check(e, std::string("checkpoint slots: ") + what);
}
#endif

std::string errno_text(int err) {
  return std::error_code(err, std::generic_category()).message();
}

void write_file(const std::string& path, const void* data, std::size_t bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) {
    throw Error("checkpoint: cannot open disk slot file '" + path +
                "' for writing: " + errno_text(errno));
  }
  const std::size_t written = bytes ? std::fwrite(data, 1, bytes, f) : 0;
  const int write_err = errno;
  if (written != bytes) {
    std::fclose(f);
    throw Error("checkpoint: writing disk slot file '" + path + "' failed after " +
                std::to_string(written) + " of " + std::to_string(bytes) +
                " bytes: " + errno_text(write_err) + " (is the disk full?)");
  }
  if (std::fflush(f) != 0) {
    const int err = errno;
    std::fclose(f);
    throw Error("checkpoint: writing disk slot file '" + path + "' failed: " + errno_text(err));
  }
  if (std::fclose(f) != 0) {
    throw Error("checkpoint: closing disk slot file '" + path + "' failed: " + errno_text(errno));
  }
}

void read_file(const std::string& path, void* data, std::size_t bytes) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    throw Error("checkpoint: cannot open disk slot file '" + path +
                "' for reading: " + errno_text(errno));
  }
  const std::size_t got = bytes ? std::fread(data, 1, bytes, f) : 0;
  const int err = errno;
  std::fclose(f);
  if (got != bytes) {
    throw Error("checkpoint: disk slot file '" + path + "' holds " + std::to_string(got) +
                " of the " + std::to_string(bytes) + " bytes of a state" +
                (got == 0 && err ? ": " + errno_text(err) : std::string()));
  }
}

std::string make_directory(const std::string& parent_in) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path parent = parent_in.empty() ? fs::temp_directory_path(ec) : fs::path(parent_in);
  if (ec) {
    throw Error("checkpoint: no temporary directory for the disk slots (" + ec.message() +
                "); set CheckpointOptions::disk_directory");
  }
  if (!fs::is_directory(parent, ec)) {
    throw Error("checkpoint: disk directory '" + parent.string() +
                "' does not exist or is not a directory; set "
                "CheckpointOptions::disk_directory to a writable directory");
  }
  static std::atomic<unsigned> counter{0};
  const auto id = static_cast<unsigned long long>(
      std::chrono::steady_clock::now().time_since_epoch().count() & 0xffffffffffULL);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    char name[96];
    std::snprintf(name, sizeof name, "dfluid-checkpoint-%llx-%u", id, counter++);
    const fs::path dir = parent / name;
    if (fs::create_directory(dir, ec)) return dir.string();
    if (ec) {
      throw Error("checkpoint: cannot create the disk slot directory '" + dir.string() +
                  "': " + ec.message() + "; set CheckpointOptions::disk_directory to a " +
                  "writable directory");
    }
  }
  throw Error("checkpoint: cannot find a free directory name in '" + parent.string() + "'");
}

}  // namespace

SlotNeeds slot_needs(const checkpoint::Plan& plan) {
  SlotNeeds n;
  n.state_bytes = plan.size.state_bytes;
  for (const checkpoint::Action& a : plan.actions)
    if (a.type == checkpoint::ActionType::Store)
      n.slots[a.level] = std::max<std::int64_t>(n.slots[a.level], std::int64_t(a.slot) + 1);
  n.staging = plan.staging && (n.slots.host > 0 || n.slots.disk > 0);
  return n;
}

CheckpointSlots::CheckpointSlots(const Context& ctx, const SlotNeeds& needs,
                                 const std::string& device_budget, const std::string& host_budget)
    : ctx_(ctx),
      needs_(needs),
      state_bytes_(needs.state_bytes),
      staging_(needs.staging),
      gpu_(ctx.on_gpu()) {
  for (int l = 0; l < checkpoint::kLevelCount; ++l) {
    const auto n = static_cast<std::size_t>(std::max<std::int64_t>(0, needs.slots[Level(l)]));
    held_[l].assign(n, 0);
    if (l != static_cast<int>(Level::Disk)) blocks_[l].resize(n);
  }
  try {
#if DFLUID_WITH_CUDA
    if (gpu_) {
      cudaStream_t st = nullptr;
      slot_check(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking), "cudaStreamCreate");
      copy_stream_ = st;
      for (void** ev :
           {&ev_staged_, &ev_staging_free_, &ev_prefetched_, &ev_bounce_ready_, &ev_bounce_free_}) {
        cudaEvent_t e = nullptr;
        slot_check(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreate");
        *ev = e;
      }
      ev_host_ready_.assign(blocks_[static_cast<int>(Level::Host)].size(), nullptr);
      for (void*& ev : ev_host_ready_) {
        cudaEvent_t e = nullptr;
        slot_check(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreate");
        ev = e;
      }
    }
#endif
    // Every buffer now, level by level, each level checked against what the system reports
    // free first: a budget the machine cannot hold fails here, before the first step, and
    // the run then allocates nothing.
    const std::size_t device_count = blocks_[static_cast<int>(Level::Device)].size();
    const std::size_t device_bytes = (device_count + (staging_ ? 1 : 0)) * state_bytes_;
    const std::string device_what = std::to_string(device_count) + " device checkpoint slot(s)" +
                                    (staging_ ? " and a staging buffer" : "");
    reserve(ctx_, device_bytes, device_what, device_budget, [&] {
      for (Block& b : blocks_[static_cast<int>(Level::Device)])
        allocate(b, ctx_.memory_space(), true);
      if (staging_) allocate(staging_buf_, ctx_.memory_space(), true);
    });
    const std::size_t host_count = blocks_[static_cast<int>(Level::Host)].size();
    const bool bounce = needs.slots.disk > 0;
    const std::size_t host_bytes = (host_count + (bounce ? 1 : 0)) * state_bytes_;
    const std::string host_what = std::to_string(host_count) + (gpu_ ? " pinned" : "") +
                                  " host checkpoint slot(s)" + (bounce ? " and a disk buffer" : "");
    reserve(Context::cpu(), host_bytes, host_what, host_budget, [&] {
      for (Block& b : blocks_[static_cast<int>(Level::Host)])
        allocate(b, MemorySpace::Host, false);
      if (bounce) allocate(bounce_, MemorySpace::Host, false);
    });
  } catch (...) {
    cleanup();  // the destructor does not run when the constructor throws
    throw;
  }
}

CheckpointSlots::~CheckpointSlots() {
  cleanup();
}

void CheckpointSlots::reserve(const Context& where, std::size_t bytes, const std::string& what,
                              const std::string& budget, const std::function<void()>& alloc) {
  if (bytes == 0) return;
  const std::string head = "checkpointed rollout: " + what + " of " + format_bytes(state_bytes_) +
                           " (" + format_bytes(bytes) + " in all, " + budget + ")";
  const std::string fix =
      "; lower " + budget.substr(0, budget.find(' ')) + " (fewer slots) or free memory";
  const std::size_t available = available_memory(where);
  if (bytes > available) {
    throw InvalidArgument(head + ": " + format_bytes(available) + " available" +
                          (where.on_gpu() ? " on " + where.description() : " (host memory)") + fix);
  }
  try {
    alloc();
  } catch (const std::bad_alloc&) {
    throw InvalidArgument(head + ": the allocation failed" + fix);
  } catch (const CudaError& e) {
    throw InvalidArgument(head + ": " + e.what() + fix);
  }
}

void CheckpointSlots::begin(bool use_disk, const std::string& disk_parent) {
  finish();
  for (auto& h : held_)
    std::fill(h.begin(), h.end(), 0);
  staging_host_slot_ = -1;
  bounce_disk_slot_ = -1;
  bounce_prefetched_ = false;
  prefetch_hits_ = 0;
  if (use_disk) dir_ = make_directory(disk_parent);
}

void CheckpointSlots::finish() noexcept {
  try {
    wait_disk();
  } catch (...) {  // reported by fence(); here only the cleanup matters
  }
#if DFLUID_WITH_CUDA
  if (gpu_) {
    cuda_warn(cudaStreamSynchronize(static_cast<cudaStream_t>(ctx_.stream())),
              "checkpoint slots: cudaStreamSynchronize");
    if (copy_stream_)
      cuda_warn(cudaStreamSynchronize(static_cast<cudaStream_t>(copy_stream_)),
                "checkpoint slots: cudaStreamSynchronize (copy stream)");
  }
#endif
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    dir_.clear();
  }
}

void CheckpointSlots::cleanup() noexcept {
  finish();
#if DFLUID_WITH_CUDA
  if (gpu_) {
    for (void*& ev : ev_host_ready_) {
      if (ev)
        cuda_warn(cudaEventDestroy(static_cast<cudaEvent_t>(ev)),
                  "checkpoint slots: cudaEventDestroy");
      ev = nullptr;
    }
    for (void** ev :
         {&ev_staged_, &ev_staging_free_, &ev_prefetched_, &ev_bounce_ready_, &ev_bounce_free_}) {
      if (*ev)
        cuda_warn(cudaEventDestroy(static_cast<cudaEvent_t>(*ev)),
                  "checkpoint slots: cudaEventDestroy");
      *ev = nullptr;
    }
    if (copy_stream_)
      cuda_warn(cudaStreamDestroy(static_cast<cudaStream_t>(copy_stream_)),
                "checkpoint slots: cudaStreamDestroy");
    copy_stream_ = nullptr;
  }
#endif
  for (auto& level : blocks_) {
    for (Block& b : level)
      free_block(b);
  }
  free_block(staging_buf_);
  free_block(bounce_);
}

void CheckpointSlots::allocate(Block& b, MemorySpace space, bool counted) {
  if (b.ptr) return;
  b.bytes = state_bytes_;
  b.space = space;
#if DFLUID_WITH_CUDA
  if (gpu_ && space == MemorySpace::Host) {
    void* p = nullptr;
    slot_check(cudaMallocHost(&p, state_bytes_), "cudaMallocHost of a host checkpoint slot");
    b.ptr = p;
    b.pinned = true;
    return;
  }
#endif
  b.allocator = current_allocator();
  if (counted) b.counters = counters_of(ctx_);
  b.ptr = allocate_bytes(state_bytes_, space, b.counters.get());
  b.pinned = false;
}

void CheckpointSlots::free_block(Block& b) noexcept {
  if (!b.ptr) return;
#if DFLUID_WITH_CUDA
  if (b.pinned) {
    cuda_warn(cudaFreeHost(b.ptr), "checkpoint slots: cudaFreeHost");
    b = Block{};
    return;
  }
#endif
  deallocate_bytes(b.ptr, b.bytes, b.space, b.allocator, b.counters.get());
  b = Block{};
}

void CheckpointSlots::check_slot(Level level, std::int32_t slot, const char* what) const {
  const auto& h = held_[static_cast<int>(level)];
  if (slot < 0 || static_cast<std::size_t>(slot) >= h.size()) {
    throw Error(std::string("checkpoint ") + what + ": " + checkpoint::to_string(level) + " slot " +
                std::to_string(slot) + " out of range (" + std::to_string(h.size()) + " slots)");
  }
}

std::string CheckpointSlots::disk_path(std::int32_t slot) const {
  return (std::filesystem::path(dir_) / ("slot-" + std::to_string(slot) + ".state")).string();
}

// ---- stream primitives: CUDA calls on the GPU path, plain memcpy on the CPU path ----

void CheckpointSlots::copy_async(void* dst, const void* src, std::size_t bytes, bool copy_stream) {
  if (bytes == 0) return;
#if DFLUID_WITH_CUDA
  if (gpu_) {
    cudaStream_t st = static_cast<cudaStream_t>(copy_stream ? copy_stream_ : ctx_.stream());
    slot_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, st), "cudaMemcpyAsync");
    return;
  }
#endif
  (void)copy_stream;
  std::memcpy(dst, src, bytes);
}

void CheckpointSlots::pack(const std::vector<StateSegment>& state, void* dst, bool copy_stream) {
  std::size_t off = 0;
  for (const StateSegment& s : state) {
    copy_async(static_cast<unsigned char*>(dst) + off, s.data, s.bytes, copy_stream);
    off += s.bytes;
  }
}

void CheckpointSlots::unpack(const void* src, const std::vector<StateSegment>& state,
                             bool copy_stream) {
  std::size_t off = 0;
  for (const StateSegment& s : state) {
    copy_async(s.data, static_cast<const unsigned char*>(src) + off, s.bytes, copy_stream);
    off += s.bytes;
  }
}

void CheckpointSlots::record(void* event, bool copy_stream) {
#if DFLUID_WITH_CUDA
  if (gpu_) {
    cudaStream_t st = static_cast<cudaStream_t>(copy_stream ? copy_stream_ : ctx_.stream());
    slot_check(cudaEventRecord(static_cast<cudaEvent_t>(event), st), "cudaEventRecord");
  }
#endif
  (void)event;
  (void)copy_stream;
}

void CheckpointSlots::stream_wait(bool copy_stream, void* event) {
#if DFLUID_WITH_CUDA
  if (gpu_) {
    cudaStream_t st = static_cast<cudaStream_t>(copy_stream ? copy_stream_ : ctx_.stream());
    slot_check(cudaStreamWaitEvent(st, static_cast<cudaEvent_t>(event), 0), "cudaStreamWaitEvent");
  }
#endif
  (void)event;
  (void)copy_stream;
}

void CheckpointSlots::host_wait(void* event) {
#if DFLUID_WITH_CUDA
  if (gpu_)
    slot_check(cudaEventSynchronize(static_cast<cudaEvent_t>(event)), "cudaEventSynchronize");
#endif
  (void)event;
}

void CheckpointSlots::sync_stream(bool copy_stream) {
#if DFLUID_WITH_CUDA
  if (gpu_) {
    cudaStream_t st = static_cast<cudaStream_t>(copy_stream ? copy_stream_ : ctx_.stream());
    slot_check(cudaStreamSynchronize(st), "cudaStreamSynchronize");
  }
#endif
  (void)copy_stream;
}

void CheckpointSlots::wait_disk() {
  if (!disk_op_.valid()) return;
  std::future<void> op = std::move(disk_op_);
  try {
    op.get();  // rethrows the background operation's error
  } catch (...) {
    bounce_disk_slot_ = -1;
    bounce_prefetched_ = false;
    throw;
  }
}

// ---- the actions ----

void CheckpointSlots::store(Level level, std::int32_t slot,
                            const std::vector<StateSegment>& state) {
  check_slot(level, slot, "store");
  const int l = static_cast<int>(level);
  if (held_[l][slot]) {
    throw Error(std::string("checkpoint store: ") + checkpoint::to_string(level) + " slot " +
                std::to_string(slot) + " is occupied");
  }
  switch (level) {
    case Level::Device: {
      pack(state, blocks_[l][slot].ptr, false);
      break;
    }
    case Level::Host: {
      Block& b = blocks_[l][slot];
      if (staging_host_slot_ == slot) staging_host_slot_ = -1;
      if (!staging_) {  // straight to pinned memory, ordered on the context's stream
        pack(state, b.ptr, false);
        break;
      }
      staging_host_slot_ = -1;
      stream_wait(false, ev_staging_free_);  // a prefetch may still fill the staging buffer
      pack(state, staging_buf_.ptr, false);
      record(ev_staged_, false);
      stream_wait(true, ev_staged_);
      copy_async(b.ptr, staging_buf_.ptr, state_bytes_, true);
      record(gpu_ ? ev_host_ready_[slot] : nullptr, true);
      record(ev_staging_free_, true);
      break;
    }
    case Level::Disk: {
      wait_disk();  // the bounce buffer is ours again
      bounce_disk_slot_ = -1;
      bounce_prefetched_ = false;
      host_wait(ev_bounce_free_);  // no restore still reads the bounce buffer
      const std::string path = disk_path(slot);
      if (!staging_) {
        pack(state, bounce_.ptr, false);
        sync_stream(false);
        write_file(path, bounce_.ptr, state_bytes_);
        break;
      }
      staging_host_slot_ = -1;
      stream_wait(false, ev_staging_free_);
      pack(state, staging_buf_.ptr, false);
      record(ev_staged_, false);
      stream_wait(true, ev_staged_);
      copy_async(bounce_.ptr, staging_buf_.ptr, state_bytes_, true);
      record(ev_bounce_ready_, true);
      record(ev_staging_free_, true);
      void* ready = ev_bounce_ready_;
      const void* data = bounce_.ptr;
      const std::size_t bytes = state_bytes_;
      const int device = gpu_ ? ctx_.cuda_device() : -1;
      disk_op_ = std::async(std::launch::async, [path, data, bytes, ready, device] {
#if DFLUID_WITH_CUDA
        if (device >= 0) {
          slot_check(cudaSetDevice(device), "cudaSetDevice");
          slot_check(cudaEventSynchronize(static_cast<cudaEvent_t>(ready)),
                     "waiting for the copy into the disk bounce buffer");
        }
#endif
        (void)ready;
        (void)device;
        write_file(path, data, bytes);
      });
      break;
    }
  }
  held_[l][slot] = 1;
}

void CheckpointSlots::prefetch(Level level, std::int32_t slot) {
  check_slot(level, slot, "prefetch");
  const int l = static_cast<int>(level);
  if (!held_[l][slot]) {
    throw Error(std::string("checkpoint prefetch: ") + checkpoint::to_string(level) + " slot " +
                std::to_string(slot) + " is empty");
  }
  if (level == Level::Host && staging_) {
    if (staging_host_slot_ == slot) return;
    stream_wait(true, ev_staging_free_);  // the staging buffer's last reader is done
    copy_async(staging_buf_.ptr, blocks_[l][slot].ptr, state_bytes_, true);
    record(ev_prefetched_, true);
    record(ev_staging_free_, true);  // a store into the staging buffer waits for this copy
    staging_host_slot_ = slot;
  } else if (level == Level::Disk) {
    if (bounce_disk_slot_ == slot) return;
    wait_disk();
    host_wait(ev_bounce_free_);
    const std::string path = disk_path(slot);
    void* data = bounce_.ptr;
    const std::size_t bytes = state_bytes_;
    bounce_disk_slot_ = slot;
    bounce_prefetched_ = true;
    disk_op_ =
        std::async(std::launch::async, [path, data, bytes] { read_file(path, data, bytes); });
  }
}

void CheckpointSlots::restore(Level level, std::int32_t slot,
                              const std::vector<StateSegment>& state) {
  check_slot(level, slot, "restore");
  const int l = static_cast<int>(level);
  if (!held_[l][slot]) {
    throw Error(std::string("checkpoint restore: ") + checkpoint::to_string(level) + " slot " +
                std::to_string(slot) + " is empty");
  }
  switch (level) {
    case Level::Device:
      unpack(blocks_[l][slot].ptr, state, false);
      break;
    case Level::Host:
      if (staging_ && staging_host_slot_ == slot) {
        ++prefetch_hits_;
        stream_wait(false, ev_prefetched_);
        unpack(staging_buf_.ptr, state, false);
        record(ev_staging_free_, false);
        break;
      }
      if (staging_ && !ev_host_ready_.empty()) stream_wait(false, ev_host_ready_[slot]);
      unpack(blocks_[l][slot].ptr, state, false);
      break;
    case Level::Disk:
      if (bounce_disk_slot_ == slot && bounce_prefetched_) ++prefetch_hits_;
      bounce_prefetched_ = false;
      wait_disk();  // a prefetch of this slot, or a write (of any slot) in flight
      if (bounce_disk_slot_ != slot) {
        host_wait(ev_bounce_free_);
        bounce_disk_slot_ = -1;
        read_file(disk_path(slot), bounce_.ptr, state_bytes_);
        bounce_disk_slot_ = slot;
      }
      unpack(bounce_.ptr, state, false);
      record(ev_bounce_free_, false);
      break;
  }
}

void CheckpointSlots::release(Level level, std::int32_t slot) {
  check_slot(level, slot, "free");
  const int l = static_cast<int>(level);
  held_[l][slot] = 0;
  if (level == Level::Host && staging_host_slot_ == slot) staging_host_slot_ = -1;
  if (level == Level::Disk && bounce_disk_slot_ == slot) {
    wait_disk();  // a prefetch of the freed slot may still be reading
    bounce_disk_slot_ = -1;
    bounce_prefetched_ = false;
  }
  // Buffers stay allocated for the slot's next store; files are overwritten by it.
}

void CheckpointSlots::fence(Level level) {
  if (level == Level::Host) sync_stream(true);
  if (level == Level::Disk) {
    wait_disk();
    sync_stream(true);
  }
}

}  // namespace dfluid::detail
