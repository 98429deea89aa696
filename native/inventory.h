// What this machine offers to the placement of replicas: the compute devices ggml
// sees (through its backend registry) and the host's memory.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace inference {

struct GpuInfo {
    int32_t id = 0;
    std::string name;
    std::string description;
    uint64_t totalMemory = 0;
    uint64_t freeMemory = 0;
    std::optional<std::string> computeCapability;  // "8.9"; known for CUDA devices only
};

struct Inventory {
    std::string backend;  // "cpu" | "cuda"
    std::vector<GpuInfo> gpus;
    int32_t cpuThreads = 0;
    uint64_t totalRam = 0;
    uint64_t freeRam = 0;
};

Inventory collectInventory();

}  // namespace inference
