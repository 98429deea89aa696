// See inventory.h.
#include "inventory.h"

#include <sys/sysinfo.h>

#include <thread>

#include "ggml-backend.h"

#ifdef INFERENCE_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace inference {

namespace {

std::optional<std::string> computeCapability([[maybe_unused]] int32_t index) {
#ifdef INFERENCE_WITH_CUDA
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, index) == cudaSuccess) {
        return std::to_string(prop.major) + "." + std::to_string(prop.minor);
    }
#endif
    return std::nullopt;
}

}  // namespace

Inventory collectInventory() {
    Inventory inv;
    inv.backend = "cpu";
    int32_t gpuIndex = 0;
    for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {
        ggml_backend_dev_t dev = ggml_backend_dev_get(i);
        const auto type = ggml_backend_dev_type(dev);
        if (type != GGML_BACKEND_DEVICE_TYPE_GPU && type != GGML_BACKEND_DEVICE_TYPE_IGPU) continue;
        GpuInfo g;
        g.id = gpuIndex++;
        g.name = ggml_backend_dev_name(dev);
        g.description = ggml_backend_dev_description(dev);
        size_t freeMem = 0;
        size_t totalMem = 0;
        ggml_backend_dev_memory(dev, &freeMem, &totalMem);
        g.freeMemory = freeMem;
        g.totalMemory = totalMem;
        const std::string reg = ggml_backend_reg_name(ggml_backend_dev_backend_reg(dev));
        if (reg == "CUDA") {
            inv.backend = "cuda";
            g.computeCapability = computeCapability(g.id);
        }
        inv.gpus.push_back(std::move(g));
    }
    inv.cpuThreads = static_cast<int32_t>(std::thread::hardware_concurrency());
    struct sysinfo si {};
    if (sysinfo(&si) == 0) {
        inv.totalRam = static_cast<uint64_t>(si.totalram) * si.mem_unit;
        inv.freeRam = static_cast<uint64_t>(si.freeram) * si.mem_unit;
    }
    return inv;
}

}  // namespace inference
