#include "common/counters.hpp"

namespace dfluid::app {

nlohmann::json counters_json(const ContextCounters& c) {
  return {{"launches", c.launches},
          {"host_waits", c.host_waits},
          {"allocations", c.allocations},
          {"frees", c.frees},
          {"bytes_to_device", c.bytes_to_device},
          {"bytes_to_host", c.bytes_to_host},
          {"peak_bytes", c.peak_bytes}};
}

std::string counters_text(const ContextCounters& c) {
  return std::to_string(c.launches) + " launches, " + std::to_string(c.host_waits) +
         " host waits, " + std::to_string(c.allocations) + " allocations, " +
         std::to_string(c.frees) + " frees, " + std::to_string(c.bytes_to_device) +
         " B to device, " + std::to_string(c.bytes_to_host) + " B to host";
}

std::string counters_summary_line(const Context& ctx) {
  // The CPU path counts what the CUDA path would launch and wait for: say so, so that nobody
  // reads "launches" on a CPU run as threads started.
  return std::string(ctx.on_gpu() ? "GPU events" : "GPU events (as the CUDA path would perform)") +
         ": " + counters_text(ctx.counters());
}

}  // namespace dfluid::app
