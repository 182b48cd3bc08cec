#include "outputs/report_data.hpp"

#include "outputs/files.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace ansatz::engine::report
{

namespace fs = std::filesystem;

namespace
{

// Regular files only, of at most 64 MiB: a run folder may hold a link to /dev/zero or a FIFO.
bool read_file(const fs::path& file, std::string& out)
{
    return read_regular_file(file, uint64_t{ 64 } << 20, out).empty();
}

bool starts_with(const std::string& s, const std::string& prefix)
{
    return s.rfind(prefix, 0) == 0;
}

bool ends_with(const std::string& s, const std::string& suffix)
{
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::vector<std::string> split(const std::string& line, char by)
{
    std::vector<std::string> out(1);
    for (char c : line)
        if (c == by)
            out.emplace_back();
        else if (c != '\r')
            out.back() += c;
    return out;
}

// A cell of metrics.csv: "1.5", "nan", "-inf", "inf" (as printf writes them).
bool parse_number(const std::string& cell, double& out)
{
    if (cell.empty())
        return false;
    char* end = nullptr;
    out = std::strtod(cell.c_str(), &end);
    return end && *end == '\0';
}

void read_metrics(RunData& r)
{
    std::string text;
    if (!read_file(r.folder / "metrics.csv", text))
        return;
    r.has_metrics = true;
    std::istringstream lines(text);
    std::string header;
    std::getline(lines, header);
    const std::vector<std::string> names = split(header, ',');
    if (names.size() < 3 || names[0] != "stage" || names[1] != "type" || names[2] != "epoch")
    {
        r.problems.push_back(
            "metrics.csv does not start with the columns stage,type,epoch, so it is not shown.");
        return;
    }
    r.columns.assign(names.begin() + 3, names.end());
    size_t number = 1;
    for (std::string line; std::getline(lines, line);)
    {
        ++number;
        if (line.empty() || line == "\r")
            continue;
        const std::vector<std::string> cells = split(line, ',');
        if (cells.size() != names.size())
        {
            r.problems.push_back("metrics.csv line " + std::to_string(number) + " has " +
                                 std::to_string(cells.size()) + " cells where the header has " +
                                 std::to_string(names.size()) + "; the line is left out.");
            continue;
        }
        MetricRow row;
        double stage = 0, epoch = 0;
        if (!parse_number(cells[0], stage) || !parse_number(cells[2], epoch) || stage < 0 || epoch < 0)
        {
            r.problems.push_back("metrics.csv line " + std::to_string(number) +
                                 " has no stage or epoch number; the line is left out.");
            continue;
        }
        row.stage = static_cast<size_t>(stage);
        row.type = cells[1];
        row.epoch = static_cast<int64_t>(epoch);
        for (size_t i = 3; i < cells.size(); ++i)
        {
            double v = 0;
            if (parse_number(cells[i], v))
                row.values[names[i]] = v;
            else if (!cells[i].empty())
                row.values[names[i]] = NAN; // a cell that is not a number shows as a skipped value
        }
        r.rows.push_back(std::move(row));
    }
}

std::string scalar_text(const YAML::Node& n)
{
    if (n.IsScalar())
        return n.Scalar();
    if (n.IsSequence())
    {
        std::string out;
        for (const YAML::Node& item : n)
            if (item.IsScalar())
                out += (out.empty() ? "" : ", ") + item.Scalar();
        return "[" + out + "]";
    }
    return {};
}

void read_pipeline(RunData& r)
{
    r.has_pipeline = read_file(r.folder / "pipeline.yaml", r.pipeline_text);
    if (!r.has_pipeline)
        return;
    try
    {
        r.pipeline = YAML::Load(r.pipeline_text);
    }
    catch (const YAML::Exception& e)
    {
        r.problems.push_back("pipeline.yaml could not be read: " + std::string(e.what()) + ".");
        r.pipeline = YAML::Node();
        return;
    }
    if (!r.pipeline.IsMap())
    {
        r.pipeline = YAML::Node();
        return;
    }
    if (r.pipeline["pipeline"] && r.pipeline["pipeline"].IsScalar())
        r.name = r.pipeline["pipeline"].Scalar();
    const YAML::Node stages = r.pipeline["stages"];
    if (!stages || !stages.IsSequence())
        return;
    size_t index = 0;
    for (const YAML::Node& item : stages)
    {
        StageInfo s;
        s.index = ++index;
        if (item.IsMap() && item.size() == 1)
        {
            const auto entry = *item.begin();
            s.type = entry.first.Scalar();
            if (entry.second.IsMap())
                for (const auto& kv : entry.second)
                    s.keys[kv.first.Scalar()] = scalar_text(kv.second);
        }
        if (s.keys.count("epochs"))
            s.epochs_planned = std::atoll(s.keys["epochs"].c_str());
        r.stages.push_back(std::move(s));
    }
}

void read_info(RunData& r)
{
    std::string text;
    if (!read_file(r.folder / "run.yaml", text))
        return;
    try
    {
        r.info = YAML::Load(text);
        if (!r.info.IsMap())
            r.info = YAML::Node();
    }
    catch (const YAML::Exception& e)
    {
        r.problems.push_back("run.yaml could not be read: " + std::string(e.what()) + ".");
    }
}

// Width and height from a PNG's IHDR chunk.
void png_size(const fs::path& file, int& width, int& height)
{
    std::ifstream in(file, std::ios::binary);
    unsigned char head[24] = {};
    if (!in.read(reinterpret_cast<char*>(head), sizeof head) ||
        std::string(reinterpret_cast<char*>(head) + 12, 4) != "IHDR")
        return;
    const auto u32 = [&](int at) {
        return (uint32_t(head[at]) << 24) | (uint32_t(head[at + 1]) << 16) | (uint32_t(head[at + 2]) << 8) |
               head[at + 3];
    };
    width = static_cast<int>(u32(16));
    height = static_cast<int>(u32(20));
}

bool is_picture(const fs::path& p)
{
    std::string ext = p.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    return ext == ".png" || ext == ".svg" || ext == ".jpg" || ext == ".jpeg" || ext == ".gif" ||
           ext == ".webp";
}

void read_files(RunData& r)
{
    std::error_code ec;
    std::vector<fs::directory_entry> top;
    for (const auto& entry : fs::directory_iterator(r.folder, ec))
        top.push_back(entry);
    std::sort(top.begin(), top.end(),
              [](const auto& a, const auto& b) { return a.path().filename() < b.path().filename(); });
    for (const auto& entry : top)
    {
        const std::string name = entry.path().filename().string();
        if (name.empty() || name[0] == '.') // temporary files of atomic writes
            continue;
        FileEntry f;
        f.folder = entry.is_directory(ec);
        f.path = name + (f.folder ? "/" : "");
        if (!f.folder)
            f.bytes = entry.file_size(ec);
        else
            for (const auto& inner : fs::recursive_directory_iterator(entry.path(), ec))
                if (inner.is_regular_file(ec))
                    f.bytes += inner.file_size(ec);
        r.files.push_back(f);
    }
    // Pictures: anywhere but checkpoints/ and the report's own plots/ (which the report shows inline).
    std::vector<fs::path> found;
    for (auto it = fs::recursive_directory_iterator(r.folder, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    {
        const std::string name = it->path().filename().string();
        if (it.depth() == 0 && it->is_directory(ec) && (name == "checkpoints" || name == "plots"))
        {
            it.disable_recursion_pending();
            continue;
        }
        if (!name.empty() && name[0] != '.' && it->is_regular_file(ec) && is_picture(it->path()))
            found.push_back(it->path());
    }
    std::sort(found.begin(), found.end());
    for (const fs::path& p : found)
    {
        Picture pic;
        pic.path = fs::relative(p, r.folder, ec).generic_string();
        const std::string name = p.filename().string();
        if (starts_with(name, "stage"))
            pic.stage = static_cast<size_t>(std::strtoul(name.c_str() + 5, nullptr, 10));
        pic.bytes = fs::file_size(p, ec);
        if (p.extension() == ".png")
            png_size(p, pic.width, pic.height);
        r.pictures.push_back(pic);
    }
    const fs::path checkpoints = r.folder / "checkpoints";
    for (const auto& entry : fs::directory_iterator(checkpoints, ec))
    {
        const std::string name = entry.path().filename().string();
        if (entry.is_directory(ec) && !name.empty() && name[0] != '.' &&
            fs::exists(entry.path() / "manifest.yaml", ec))
            r.checkpoints.push_back(name);
    }
    std::sort(r.checkpoints.begin(), r.checkpoints.end());
}

void derive_status(RunData& r)
{
    for (StageInfo& s : r.stages)
        for (const MetricRow& row : r.rows)
            if (row.stage == s.index)
            {
                ++s.rows;
                s.epochs_done = std::max(s.epochs_done, row.epoch);
            }
    // A stage is complete when its own work is there, or when a later stage has begun.
    bool later_began = false;
    for (auto s = r.stages.rbegin(); s != r.stages.rend(); ++s)
    {
        if (s->type == "train")
            s->complete = s->epochs_planned > 0 ? s->epochs_done >= s->epochs_planned : s->rows > 0;
        else
            s->complete = s->rows > 0;
        bool has_picture = false;
        for (const Picture& p : r.pictures)
            has_picture |= p.stage == s->index;
        s->complete = s->complete || later_began || (s->type != "train" && has_picture);
        later_began = later_began || s->rows > 0 || has_picture;
    }
}

} // namespace

RunData read_run(const fs::path& folder)
{
    RunData r;
    r.folder = folder;
    read_pipeline(r);
    read_info(r);
    read_metrics(r);
    read_files(r);
    derive_status(r);
    return r;
}

std::vector<double> npy_row_means(const fs::path& file, std::string& problem, uintmax_t max_bytes)
{
    problem.clear();
    std::error_code ec;
    const uintmax_t size = fs::file_size(file, ec);
    if (ec)
    {
        problem = file.filename().string() + " cannot be read";
        return {};
    }
    if (size > max_bytes)
    {
        problem = file.filename().string() + " is larger than " + std::to_string(max_bytes >> 20) + " MiB";
        return {};
    }
    std::string bytes;
    read_file(file, bytes);
    const auto refuse = [&](const std::string& why) {
        problem = file.filename().string() + " " + why;
        return std::vector<double>();
    };
    if (bytes.size() < 12 || bytes.compare(0, 6, "\x93NUMPY") != 0)
        return refuse("is not a .npy file");
    const int major = static_cast<unsigned char>(bytes[6]);
    size_t header_length = 0, start = 0;
    if (major == 1)
    {
        header_length = static_cast<unsigned char>(bytes[8]) |
                        (static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8);
        start = 10;
    }
    else if (major == 2 || major == 3)
    {
        for (int i = 0; i < 4; ++i)
            header_length |= static_cast<size_t>(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
        start = 12;
    }
    else
        return refuse("has an unknown .npy version");
    if (start + header_length > bytes.size())
        return refuse("has a truncated header");
    const std::string header = bytes.substr(start, header_length);
    if (header.find("'descr': '<f4'") == std::string::npos ||
        header.find("'fortran_order': False") == std::string::npos)
        return refuse("does not hold float32 values in C order");
    const size_t open = header.find("'shape': (");
    const size_t close = header.find(')', open);
    if (open == std::string::npos || close == std::string::npos)
        return refuse("has no shape");
    std::vector<uint64_t> shape;
    for (const std::string& part : split(header.substr(open + 10, close - open - 10), ','))
        if (part.find_first_not_of(' ') != std::string::npos)
            shape.push_back(std::strtoull(part.c_str(), nullptr, 10));
    if (shape.empty())
        return refuse("holds a scalar");
    uint64_t per_row = 1;
    for (size_t i = 1; i < shape.size(); ++i)
        per_row *= shape[i];
    const size_t data = start + header_length;
    if (per_row == 0 || shape[0] > (bytes.size() - data) / 4 / per_row)
        return refuse("holds fewer values than its shape says");
    std::vector<double> means;
    means.reserve(shape[0]);
    for (uint64_t row = 0; row < shape[0]; ++row)
    {
        double sum = 0;
        for (uint64_t k = 0; k < per_row; ++k)
        {
            float v;
            std::memcpy(&v, bytes.data() + data + 4 * (row * per_row + k), 4);
            sum += v;
        }
        means.push_back(sum / static_cast<double>(per_row));
    }
    return means;
}

bool has_rows(const RunData& run, size_t stage)
{
    return std::any_of(run.rows.begin(), run.rows.end(),
                       [&](const MetricRow& row) { return row.stage == stage; });
}

std::vector<Column> stage_columns(const RunData& run, size_t stage)
{
    std::vector<Column> out;
    for (const std::string& name : run.columns)
    {
        Column c{ name, {}, {} };
        for (const MetricRow& row : run.rows)
        {
            if (row.stage != stage)
                continue;
            const auto found = row.values.find(name);
            if (found == row.values.end())
                continue;
            c.epochs.push_back(static_cast<double>(row.epoch));
            c.values.push_back(found->second);
        }
        if (!c.values.empty())
            out.push_back(std::move(c));
    }
    return out;
}

std::string metric_base(const std::string& column, std::string* role)
{
    static const std::pair<const char*, const char*> prefixes[] = {
        { "eval_", "eval" },      { "evaluation_", "eval" },  { "test_", "test" },
        { "val_", "validation" }, { "valid_", "validation" }, { "validation_", "validation" },
        { "train_", "" }
    };
    static const std::pair<const char*, const char*> suffixes[] = { { "_eval", "eval" },
                                                                    { "_test", "test" },
                                                                    { "_val", "validation" },
                                                                    { "_valid", "validation" },
                                                                    { "_train", "" } };
    if (role)
        role->clear();
    for (const auto& [prefix, name] : prefixes)
        if (starts_with(column, prefix) && column.size() > std::string(prefix).size())
        {
            if (role)
                *role = name;
            return column.substr(std::string(prefix).size());
        }
    for (const auto& [suffix, name] : suffixes)
        if (ends_with(column, suffix) && column.size() > std::string(suffix).size())
        {
            if (role)
                *role = name;
            return column.substr(0, column.size() - std::string(suffix).size());
        }
    return column;
}

std::string error_of(const std::string& column)
{
    for (const char* suffix : { "_stderr", "_std_error", "_standard_error", "_sem", "_se" })
        if (ends_with(column, suffix) && column.size() > std::string(suffix).size())
            return column.substr(0, column.size() - std::string(suffix).size());
    return {};
}

} // namespace ansatz::engine::report
