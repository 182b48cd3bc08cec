#include "support/cli.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>

namespace ansatz::test
{

namespace fs = std::filesystem;

namespace
{
std::string quote(const std::string& s)
{
    std::string out = "'";
    for (char c : s)
        out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}
} // namespace

CliResult run_ansatz(const std::vector<std::string>& args, const fs::path& cwd,
                     const std::vector<std::string>& env, int timeout_seconds)
{
    static int counter = 0;
    const fs::path capture = fs::path(ANSATZ_TEST_WORK_DIR) / "capture";
    fs::create_directories(capture);
    const std::string tag = std::to_string(::getpid()) + "-" + std::to_string(counter++);
    const fs::path out = capture / (tag + ".out"), err = capture / (tag + ".err");
    const std::string timeout =
        timeout_seconds > 0 ? "ulimit -v 4194304 && timeout -k 5 " + std::to_string(timeout_seconds) + " "
                            : std::string();
    std::string command = "cd " + quote(cwd.string()) + " && " + timeout + "env -u ANSATZ_PLUGIN_PATH";
    for (const std::string& e : env)
        command += " " + quote(e);
    command += " " + quote(ANSATZ_TEST_BINARY);
    for (const std::string& a : args)
        command += " " + quote(a);
    command += " </dev/null >" + quote(out.string()) + " 2>" + quote(err.string());
    const int raw = std::system(command.c_str());
    CliResult r;
    r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
    r.out = read_text(out);
    r.err = read_text(err);
    fs::remove(out);
    fs::remove(err);
    return r;
}

std::string square_images(int bright, int dark)
{
    std::string s("\x00\x00\x08\x03\x00\x00\x00\x30\x00\x00\x00\x06\x00\x00\x00\x06", 16);
    for (int i = 0; i < 48; ++i)
        for (int y = 0; y < 6; ++y)
            for (int x = 0; x < 6; ++x)
            {
                const int ox = i % 3, oy = (i / 3) % 3;
                s += static_cast<char>(x >= ox && x < ox + 3 && y >= oy && y < oy + 3 ? bright : dark);
            }
    return s;
}

fs::path fresh_folder(const std::string& name)
{
    const fs::path folder = fs::path(ANSATZ_TEST_WORK_DIR) / name;
    fs::remove_all(folder);
    fs::create_directories(folder);
    return folder;
}

fs::path fixture_rbm_training(const std::string& name, const std::string& pipeline,
                              const std::string& sgd_keys, const std::string& more_stages)
{
    const fs::path dir = fresh_folder(name);
    fs::create_directories(dir / "plugins");
    fs::copy_file(fs::path(ANSATZ_TEST_FIXTURE_DIR) / "libansatz_fixture_conformance_rbm.so",
                  dir / "plugins" / "libansatz_fixture_conformance_rbm.so");
    write_text(
        dir / "pipeline.yaml",
        "pipeline: " + pipeline +
            "\n"
            "seed: 5\n"
            "threads: 1\n"
            "components:\n"
            "  teacher: {plugin: conformance_rbm}\n"
            "  student: {plugin: conformance_rbm, init_std: 0.1}\n"
            "  gibbs:   {plugin: gibbs}\n"
            "  rows:    {plugin: npy, samples: $run/rows.npy}\n"
            "  cd:      {plugin: contrastive_divergence, persistent: true, chains: 4}\n"
            "  sgd:     {plugin: sgd, learning_rate: 0.1" +
            sgd_keys +
            "}\n"
            "stages:\n"
            "  - generate: {model: teacher, sampler: gibbs, chains: 8, burn_in: 20, samples: 8, to: rows}\n"
            "  - train: {model: student, data: rows, loss: cd, sampler: gibbs, optimizer: sgd, epochs: 3, "
            "batch_size: 8, checkpoint_every: 1}\n" +
            more_stages);
    return dir;
}

void write_text(const fs::path& file, const std::string& text)
{
    std::ofstream out(file, std::ios::binary);
    out << text;
    if (!out)
        throw std::runtime_error("test: cannot write " + file.string());
}

std::string read_text(const fs::path& file)
{
    std::ifstream in(file, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::string untimed(const std::string& csv)
{
    std::istringstream in(csv);
    std::string out, line;
    std::vector<bool> keep;
    while (std::getline(in, line))
    {
        std::vector<std::string> cells;
        std::stringstream cs(line);
        for (std::string c; std::getline(cs, c, ',');)
            cells.push_back(c);
        if (keep.empty())
            for (const std::string& c : cells)
                keep.push_back(c != "seconds" && c.find("per_second") == std::string::npos);
        for (size_t i = 0; i < cells.size(); ++i)
            if (i < keep.size() && keep[i])
                out += cells[i] + ",";
        out += "\n";
    }
    return out;
}

std::map<std::string, std::string> checkpoint_files(const std::filesystem::path& run)
{
    std::map<std::string, std::string> files;
    for (const auto& entry : std::filesystem::directory_iterator(run / "checkpoints"))
        for (const auto& file : std::filesystem::directory_iterator(entry.path()))
            files[entry.path().filename().string() + "/" + file.path().filename().string()] =
                file.path().filename() == "metrics.csv" ? untimed(read_text(file.path()))
                                                        : read_text(file.path());
    return files;
}

} // namespace ansatz::test
