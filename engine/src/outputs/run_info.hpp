// outputs/run_info.hpp -- run.yaml: what ran, with what, on what. Written once when a run starts,
// beside pipeline.yaml, so that `ansatz report DIR` can rebuild the report from the folder alone.
//
// The file (format 1; every key may be missing in a file written by another version):
//
//   format: 1
//   ansatz: {version: 0.1.0, abi: "2.0", build: "g++ 12.2.0"}
//   command: [/path/to/ansatz, run, pipelines/quickstart.yaml, --set, seed=7]
//   working_directory: /home/me/ansatz
//   pipeline_file: pipelines/quickstart.yaml
//   started: 2026-11-27T13:15:02+0100
//   seed: 1234
//   threads: 2
//   plugins:                      # the plugin files the pipeline's components came from
//     - {name: rbm, version: 0.1.0, file: /.../libansatz_rbm.so, abi: "2.0", license: MIT,
//        build: "g++ ...", components: [{instance: rbm, component: rbm, kind: model}]}
//   blas: {library: OpenBLAS, version: 0.3.21, config: "OpenBLAS 0.3.21 DYNAMIC_ARCH ...",
//          core: Haswell, parallel: pthreads, threads: 2, file: /usr/lib/.../libopenblas.so.0}
//   machine: {hostname: box, cpu: "AMD EPYC 7B13", cores: 2, memory_bytes: 25276063744,
//             os: "Linux 6.1.0-18-amd64 x86_64"}
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace ansatz::engine
{

struct Pipeline;

struct BlasInfo
{
    bool openblas = false; // false: the BLAS linked is not OpenBLAS (then only `file` may be known)
    std::string version;   // "0.3.21"
    std::string config;    // openblas_get_config(): version, build options, core, MAX_THREADS
    std::string core;      // openblas_get_corename(): the kernel set chosen for this CPU
    std::string parallel;  // "sequential", "pthreads" or "OpenMP"
    int threads = 0;       // openblas_get_num_threads()
    std::string file;      // the shared library the symbols came from
};

struct MachineInfo
{
    std::string hostname;
    std::string cpu; // "model name" of /proc/cpuinfo
    int cores = 0;
    uint64_t memory_bytes = 0; // MemTotal of /proc/meminfo
    std::string os;            // uname: system, release, machine
};

BlasInfo blas_info();
MachineInfo machine_info();

// The engine's version ("0.1.0") and its compiler.
const char* ansatz_version();
const char* ansatz_build();

// run.yaml's text for this pipeline, as it is about to run (call after the BLAS threads are set).
std::string run_info_yaml(const Pipeline& pipeline);

// Writes run.yaml into the run folder (atomically).
void write_run_info(const std::filesystem::path& run_folder, const Pipeline& pipeline);

// The plugin files a run's run.yaml lists (`plugins:` -> `file:`), in its order, which `--resume` loads
// before the rest of the search path; none when the file is missing, unreadable, above 1 MiB (a real one
// is a few KB) or not such a map: the resume then finds its plugins as a new run would.
struct RecordedPlugin
{
    std::filesystem::path file;
    std::string name, version; // as recorded ("" when missing)
};
std::vector<RecordedPlugin> recorded_plugin_files(const std::filesystem::path& run_folder);

} // namespace ansatz::engine
