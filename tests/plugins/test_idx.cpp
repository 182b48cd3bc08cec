// The idx dataset: small IDX files written by the test (plain and gzip), every malformed file it must
// refuse with its exact message, and the real Fashion-MNIST training set.
#include "support/plugins.hpp"
#include "user_error.hpp"

#include <catch2/catch.hpp>
#include <zlib.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/resource.h>
#include <vector>

namespace
{

namespace fs = std::filesystem;
using ansatz::Rng;
using ansatz::engine::Instance;

fs::path work_dir()
{
    const fs::path dir = fs::path(ANSATZ_TEST_WORK_DIR) / "plugins_idx";
    fs::create_directories(dir);
    return dir;
}

// An IDX file of unsigned bytes: magic 0 0 type rank, big-endian dims, then `data`.
std::string idx_bytes(const std::vector<uint32_t>& dims, const std::string& data, unsigned type = 0x08)
{
    std::string out = { '\0', '\0', static_cast<char>(type), static_cast<char>(dims.size()) };
    for (uint32_t d : dims)
        for (int shift = 24; shift >= 0; shift -= 8)
            out.push_back(static_cast<char>((d >> shift) & 0xFF));
    return out + data;
}

// `n` bytes 0, 7, 14, ... (mod 256), with 255 as the second byte.
std::string pixels(size_t n)
{
    std::string out;
    for (size_t k = 0; k < n; ++k)
        out.push_back(static_cast<char>(k == 1 ? 255 : (k * 7) % 256));
    return out;
}

std::string write_plain(const std::string& name, const std::string& bytes)
{
    const fs::path path = work_dir() / name;
    std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return path.string();
}

// Writes `members` as consecutive gzip members (gzopen "ab" starts a new member) with zlib.
std::string write_gzip(const std::string& name, const std::vector<std::string>& members)
{
    const fs::path path = work_dir() / name;
    fs::remove(path);
    for (const std::string& bytes : members)
    {
        gzFile f = gzopen(path.c_str(), "ab");
        REQUIRE(f != nullptr);
        REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) ==
                static_cast<int>(bytes.size()));
        REQUIRE(gzclose(f) == Z_OK);
    }
    return path.string();
}

// The process's peak resident set size in KiB (getrusage's ru_maxrss, KiB on Linux).
long peak_rss_kib()
{
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_maxrss;
}

// Resets the peak to the current resident set size where Linux allows it ("5" to /proc/self/clear_refs,
// Linux 4.0+), so that a peak reached by an earlier test in this process cannot hide a new one. Where it
// does not, a measurement can only read low (a test passes that should fail), never high.
void reset_peak_rss()
{
    std::ofstream("/proc/self/clear_refs") << "5";
}

std::string read_all(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

const ansatz::engine::PluginComponent& idx_component()
{
    const ansatz::engine::PluginComponent* c = ansatz::test::in_tree_plugins().find("idx");
    REQUIRE(c != nullptr);
    return *c;
}

// Creates the component through its descriptor's create() and returns the status (destroys it on success).
ansatz_status create_status(const std::string& yaml)
{
    const ansatz::engine::PluginComponent& c = idx_component();
    ansatz::engine::ConfigValues config = ansatz::engine::config_from_yaml(*c.desc, yaml);
    ansatz_status st{};
    void* self = c.desc->create(&config.c("idx"), ansatz::test::test_host().table(), &st);
    if (self)
        c.desc->destroy(self);
    return st;
}

// Expects create() to fail with INVALID_INPUT and exactly this message.
void expect_refused(const std::string& yaml, const std::string& message)
{
    const ansatz_status st = create_status(yaml);
    CHECK(st.code == ANSATZ_STATUS_INVALID_INPUT);
    CHECK(std::string(st.message) == message);
}

std::string images_yaml(const std::string& path)
{
    return "{images: '" + path + "'}";
}

ansatz_dataset_info info(const Instance& inst)
{
    ansatz_dataset_info out{};
    ansatz_status st{};
    REQUIRE(inst.dataset().info(inst.self(), &out, &st) == ANSATZ_STATUS_OK);
    return out;
}

// Reads `indices` through the table; returns the status code (out and labels are resized to fit).
int32_t read(const Instance& inst, const std::vector<int64_t>& indices, int64_t d, std::vector<float>& out,
             std::vector<float>* labels, Rng& rng, ansatz_status& st)
{
    const int64_t n = static_cast<int64_t>(indices.size());
    out.assign(static_cast<size_t>(n * d), -1.0f);
    if (labels)
        labels->assign(static_cast<size_t>(n), -1.0f);
    ansatz_tensor ot = ansatz::make_view(out.data(), { n, d });
    return inst.dataset().read(inst.self(), indices.data(), n, &ot, labels ? labels->data() : nullptr,
                               &rng.state(), &st);
}

} // namespace

TEST_CASE("idx: plain and gzip files read back as byte / 255 with labels and shape", "[idx]")
{
    const std::string data = pixels(5 * 2 * 3);
    const std::string labels = { 3, 1, 4, 1, 5 };
    const std::string images_plain = write_plain("images.idx", idx_bytes({ 5, 2, 3 }, data));
    const std::string labels_plain = write_plain("labels.idx", idx_bytes({ 5 }, labels));
    // The gzip images come as two members (header + 10 bytes, then the rest), as `cat a.gz b.gz` makes.
    const std::string whole = idx_bytes({ 5, 2, 3 }, data);
    const std::string images_gz = write_gzip("images.idx.gz", { whole.substr(0, 26), whole.substr(26) });
    const std::string labels_gz = write_gzip("labels.idx.gz", { idx_bytes({ 5 }, labels) });

    for (const auto& [images, label_file] :
         { std::pair{ images_plain, labels_plain }, std::pair{ images_gz, labels_gz } })
    {
        INFO(images);
        auto inst = ansatz::test::make("idx", "{images: '" + images + "', labels: '" + label_file + "'}");
        const ansatz_dataset_info i = info(*inst);
        REQUIRE(i.sample_rank == 2);
        REQUIRE(i.sample_shape[0] == 2);
        REQUIRE(i.sample_shape[1] == 3);
        REQUIRE(i.count == 5);
        REQUIRE(i.has_labels == 1);
        REQUIRE(i.is_image == 1);

        std::vector<float> out, lab;
        Rng rng(1);
        ansatz_status st{};
        REQUIRE(read(*inst, { 4, 0, 2 }, 6, out, &lab, rng, st) == ANSATZ_STATUS_OK);
        const int64_t order[] = { 4, 0, 2 };
        for (int r = 0; r < 3; ++r)
        {
            for (int j = 0; j < 6; ++j)
                CHECK(out[r * 6 + j] ==
                      static_cast<float>(static_cast<unsigned char>(data[order[r] * 6 + j])) / 255.0f);
            CHECK(lab[r] == static_cast<float>(labels[order[r]]));
        }
        CHECK(out[6 + 1] == 1.0f);     // sample 0, byte 1 is 255
        CHECK(out[6 * 1 + 0] == 0.0f); // sample 0, byte 0 is 0
    }
}

TEST_CASE("idx: limit keeps the first samples and reads beyond it fail", "[idx]")
{
    const std::string images = write_plain("limit.idx", idx_bytes({ 5, 2, 3 }, pixels(30)));
    auto inst = ansatz::test::make("idx", "{images: '" + images + "', limit: 3}");
    REQUIRE(info(*inst).count == 3);
    REQUIRE(info(*inst).has_labels == 0);
    std::vector<float> out;
    Rng rng(1);
    ansatz_status st{};
    REQUIRE(read(*inst, { 2 }, 6, out, nullptr, rng, st) == ANSATZ_STATUS_OK);
    CHECK(out[0] == static_cast<float>((12 * 7) % 256) / 255.0f);
    REQUIRE(read(*inst, { 0, 3 }, 6, out, nullptr, rng, st) == ANSATZ_STATUS_FAILURE);
    CHECK(std::string(st.message) == "dataset 'idx': index 3 at position 1 is outside [0, 3)");
    // Labels asked of a dataset without them is a failure, not garbage.
    std::vector<float> lab;
    REQUIRE(read(*inst, { 0 }, 6, out, &lab, rng, st) == ANSATZ_STATUS_FAILURE);

    // A limit above the count uses every sample.
    auto all = ansatz::test::make("idx", "{images: '" + images + "', limit: 50}");
    CHECK(info(*all).count == 5);
}

TEST_CASE("idx: binarize thresholds byte / 255 strictly", "[idx]")
{
    // 51 / 255 = 0.2 exactly: not above the threshold 0.2; 52 / 255 is.
    const std::string data = { 0, 50, 51, 52, static_cast<char>(200), static_cast<char>(255) };
    const std::string images = write_plain("binarize.idx", idx_bytes({ 1, 6 }, data));
    auto inst = ansatz::test::make("idx", "{images: '" + images + "', binarize: 0.2}");
    REQUIRE(info(*inst).is_image == 0); // rank 2: vectors, not images
    std::vector<float> out;
    Rng rng(1);
    ansatz_status st{};
    REQUIRE(read(*inst, { 0 }, 6, out, nullptr, rng, st) == ANSATZ_STATUS_OK);
    CHECK(out == std::vector<float>{ 0, 0, 0, 1, 1, 1 });
}

TEST_CASE(
    "idx: binarize_sampling draws Bernoulli(byte / 255): mean over 20000 reads within 5 sigma (seed 131)",
    "[idx][statistical]")
{
    const std::string data = { 0, 64, static_cast<char>(128), static_cast<char>(191), static_cast<char>(255),
                               13 };
    const std::string images = write_plain("sampling.idx", idx_bytes({ 1, 6 }, data));
    auto inst = ansatz::test::make("idx", "{images: '" + images + "', binarize_sampling: true}");
    const int64_t n = 20000;
    std::vector<float> out;
    Rng rng(131);
    ansatz_status st{};
    REQUIRE(read(*inst, std::vector<int64_t>(n, 0), 6, out, nullptr, rng, st) == ANSATZ_STATUS_OK);
    for (int j = 0; j < 6; ++j)
    {
        const double p = static_cast<unsigned char>(data[j]) / 255.0;
        double sum = 0;
        for (int64_t k = 0; k < n; ++k)
        {
            REQUIRE((out[k * 6 + j] == 0.0f || out[k * 6 + j] == 1.0f));
            sum += out[k * 6 + j];
        }
        INFO("pixel " << j << ": intensity " << p << ", mean " << sum / n);
        // 5 binomial standard errors (0 for intensities 0 and 1, which must be exact).
        CHECK(std::abs(sum / n - p) <= 5 * std::sqrt(p * (1 - p) / n));
    }
}

TEST_CASE("idx: range maps byte / 255 to [low, high] and pad surrounds images with the value of byte 0",
          "[idx]")
{
    // Two 2 x 3 images; with range [-1, 1] and pad 1 they read as 4 x 5 images, border -1.
    const std::string data = {
        0, 51, static_cast<char>(255), 102, static_cast<char>(204), 1, static_cast<char>(255), 0, 0,
        0, 0,  static_cast<char>(255)
    };
    const std::string images = write_plain("range.idx", idx_bytes({ 2, 2, 3 }, data));
    auto inst = ansatz::test::make("idx", "{images: '" + images + "', range: [-1, 1], pad: 1}");
    const ansatz_dataset_info i = info(*inst);
    CHECK(i.is_image == 1);
    CHECK(i.sample_rank == 2);
    CHECK(i.sample_shape[0] == 4);
    CHECK(i.sample_shape[1] == 5);
    std::vector<float> out;
    Rng rng(1);
    ansatz_status st{};
    REQUIRE(read(*inst, { 1, 0 }, 20, out, nullptr, rng, st) == ANSATZ_STATUS_OK);
    const auto level = [](int byte) { return static_cast<float>(-1.0 + 2.0 * (byte / 255.0)); };
    for (int image = 0; image < 2; ++image)
        for (int y = 0; y < 4; ++y)
            for (int x = 0; x < 5; ++x)
            {
                INFO("image " << image << " pixel " << y << ", " << x);
                const int source = image == 0 ? 1 : 0; // indices {1, 0}
                const bool inside = y >= 1 && y <= 2 && x >= 1 && x <= 3;
                const float expected =
                    inside ? level(static_cast<unsigned char>(
                                 data[static_cast<size_t>(source * 6 + (y - 1) * 3 + (x - 1))]))
                           : -1.0f;
                CHECK(out[static_cast<size_t>(image * 20 + y * 5 + x)] == expected);
            }
    CHECK(level(255) == 1.0f);
    CHECK(level(0) == -1.0f);

    // Without range, pad adds zeros (byte 0 reads as 0).
    auto plain = ansatz::test::make("idx", "{images: '" + images + "', pad: 2}");
    CHECK(info(*plain).sample_shape[0] == 6);
    REQUIRE(read(*plain, { 0 }, 42, out, nullptr, rng, st) == ANSATZ_STATUS_OK);
    CHECK(out[0] == 0.0f);
    CHECK(out[2 * 7 + 4] == static_cast<float>(255) / 255.0f); // row 0, column 2 of the image
}

TEST_CASE("idx: a range that is not an interval, range with binarize, and pad on vectors are refused",
          "[idx][bad-input]")
{
    const std::string images = write_plain("range_bad.idx", idx_bytes({ 1, 2, 3 }, pixels(6)));
    expect_refused(
        "{images: '" + images + "', range: [1, -1]}",
        "key range is [1, -1], which is not an interval [low, high] of finite numbers with low < high");
    expect_refused(
        "{images: '" + images + "', range: [-1, 1], binarize: 0.5}",
        "key range maps grey levels to an interval, but key binarize makes them 0 or 1; give one of "
        "them");
    expect_refused(
        "{images: '" + images + "', range: [-1, 1], binarize_sampling: true}",
        "key range maps grey levels to an interval, but key binarize_sampling makes them 0 or 1; give "
        "one of them");
    const std::string vectors = write_plain("pad_vectors.idx", idx_bytes({ 1, 6 }, pixels(6)));
    expect_refused("{images: '" + vectors + "', pad: 2}",
                   vectors +
                       ": key pad adds pixels around images, but this file holds samples of rank 1, not "
                       "images {H, W}");
}

TEST_CASE("idx: binarize and binarize_sampling together are refused", "[idx]")
{
    const std::string images = write_plain("both.idx", idx_bytes({ 1, 6 }, pixels(6)));
    expect_refused("{images: '" + images + "', binarize: 0.5, binarize_sampling: true}",
                   "keys binarize and binarize_sampling exclude each other; give one of them");
}

TEST_CASE("idx: every malformed file is refused with INVALID_INPUT and a sentence naming the file and offset",
          "[idx][bad-input]")
{
    const std::string good = idx_bytes({ 8, 2, 3 }, pixels(48));

    const std::string empty = write_plain("empty.idx", "");
    expect_refused(images_yaml(empty), empty + ": the file is empty (0 bytes), so it is not an IDX file");

    const std::string two = write_plain("two_bytes.idx", std::string(2, '\0'));
    expect_refused(images_yaml(two),
                   two + ": truncated header: the file has only 2 of the 4 bytes of an IDX magic number");

    const std::string ten = write_plain("ten_bytes.idx", good.substr(0, 10));
    expect_refused(images_yaml(ten),
                   ten + ": truncated header: a rank-3 IDX header has 16 bytes, but the file has only 10");

    const std::string pgm = write_plain("picture.pgm", "P5\n2 3\n255\n" + pixels(6));
    expect_refused(images_yaml(pgm), pgm + ": bad magic number: the first two bytes are 0x50 0x35, not 0x00 "
                                           "0x00, so this is not an IDX file");

    const std::string floats = write_plain("floats.idx", idx_bytes({ 1, 2 }, std::string(8, '\0'), 0x0D));
    expect_refused(images_yaml(floats),
                   floats + ": data type 0x0D (32-bit float) at byte offset 2 is not supported; "
                            "only 0x08 (unsigned byte) is");

    const std::string zero = write_plain("zero.idx", idx_bytes({ 0, 2, 3 }, ""));
    expect_refused(images_yaml(zero),
                   zero + ": dimension 0 (at byte offset 4) is 0, so the file holds no data");

    const std::string short_data = write_plain("short.idx", good.substr(0, 56));
    expect_refused(images_yaml(short_data), short_data +
                                                ": header claims 8 x 2 x 3 = 48 bytes of data from byte "
                                                "offset 16, but the data ends at byte offset 56");

    const std::string long_data = write_plain("long.idx", good + "xy");
    expect_refused(images_yaml(long_data),
                   long_data +
                       ": header claims 8 x 2 x 3 = 48 bytes of data from byte offset 16, which end at byte "
                       "offset 64, but the file goes on to byte offset 66 (2 trailing bytes)");

    const std::string short_gz = write_gzip("short.idx.gz", { good.substr(0, 56) });
    expect_refused(
        images_yaml(short_gz),
        short_gz + ": header claims 8 x 2 x 3 = 48 bytes of data from byte offset 16, but the data ends at "
                   "byte offset 56 (offsets in the decompressed stream)");

    const std::string ten_gz = write_gzip("ten_bytes.idx.gz", { good.substr(0, 10) });
    expect_refused(
        images_yaml(ten_gz),
        ten_gz +
            ": truncated header: a rank-3 IDX header has 16 bytes, but the decompressed stream has only 10");
}

TEST_CASE("idx: a truncated or corrupt gzip stream is refused with its compressed byte offset",
          "[idx][bad-input]")
{
    const std::string whole_path = write_gzip("whole.idx.gz", { idx_bytes({ 8, 2, 3 }, pixels(48)) });
    const std::string gz = read_all(whole_path);
    REQUIRE(gz.size() > 30);

    // Cut in the middle: zlib consumes every byte and then finds no end marker.
    const std::string cut = write_plain("cut.idx.gz", gz.substr(0, 30));
    expect_refused(images_yaml(cut),
                   cut + ": gzip stream is corrupt or truncated at compressed byte offset 30 (the "
                         "stream ends before its end marker)");

    // A wrong CRC-32 in the 8-byte trailer: zlib reports it once it has read the trailer's first 4 bytes.
    std::string bad_crc = gz;
    bad_crc[gz.size() - 8] = static_cast<char>(bad_crc[gz.size() - 8] ^ 0x55);
    const std::string crc = write_plain("crc.idx.gz", bad_crc);
    expect_refused(images_yaml(crc), crc +
                                         ": gzip stream is corrupt or truncated at compressed byte offset " +
                                         std::to_string(gz.size() - 4) + " (incorrect data check)");

    // An unknown compression method in gzip header byte 2 (must be 8, deflate): zlib has consumed the
    // header's first 4 bytes when it says so; the offset is where zlib stopped.
    std::string bad_method = gz;
    bad_method[2] = 7;
    const std::string method = write_plain("method.idx.gz", bad_method);
    expect_refused(images_yaml(method),
                   method + ": gzip stream is corrupt or truncated at compressed byte offset 4 "
                            "(unknown compression method)");

    // Bytes after the last member that are not another member.
    const std::string trailing = write_plain("trailing.idx.gz", gz + "junk");
    expect_refused(images_yaml(trailing), trailing +
                                              ": 4 bytes after the end of the gzip stream at compressed byte "
                                              "offset " +
                                              std::to_string(gz.size()) + " are not a gzip member");
}

TEST_CASE(
    "idx: a gzip bomb (2 images, then 100 MB of zeros) is refused for trailing bytes with little memory",
    "[idx][bad-input]")
{
    // A valid header and data for 2 images of 28 x 28, then 100 MB of zeros: ~100 KB compressed. It is
    // written in 1 MB pieces so that the test itself never holds the 100 MB (which would raise the peak
    // measured below before the measurement starts).
    const fs::path path = work_dir() / "bomb.idx.gz";
    {
        gzFile f = gzopen(path.c_str(), "wb9");
        REQUIRE(f != nullptr);
        const std::string head = idx_bytes({ 2, 28, 28 }, pixels(2 * 28 * 28));
        REQUIRE(gzwrite(f, head.data(), static_cast<unsigned>(head.size())) == static_cast<int>(head.size()));
        const std::string zeros(1 << 20, '\0');
        for (int k = 0; k < 100; ++k)
            REQUIRE(gzwrite(f, zeros.data(), static_cast<unsigned>(zeros.size())) ==
                    static_cast<int>(zeros.size()));
        REQUIRE(gzclose(f) == Z_OK);
    }
    REQUIRE(fs::file_size(path) < 1'000'000);

    // The reader decompresses at most the claimed size + 1 byte (1585 bytes here), so the peak resident
    // memory must not grow by anything like the 100 MB of the stream: less than 50 MB is asserted (a
    // reader that decompresses the whole stream grows it by 100 MB or more).
    reset_peak_rss();
    const long before = peak_rss_kib();
    expect_refused(
        images_yaml(path.string()),
        path.string() +
            ": header claims 2 x 28 x 28 = 1568 bytes of data from byte offset 16, which end at byte "
            "offset 1584, but the decompressed stream goes on past it (trailing bytes; decompression "
            "stops there, so they are not counted)");
    const long grown = peak_rss_kib() - before;
    INFO("peak resident memory grew by " << grown << " KiB");
    CHECK(grown < 50 * 1024);

    // A trailing byte in a gzip stream gets the same message (the byte past the claim is the one read).
    const std::string good = idx_bytes({ 8, 2, 3 }, pixels(48));
    const std::string long_gz = write_gzip("long.idx.gz", { good, "x" });
    expect_refused(images_yaml(long_gz),
                   long_gz + ": header claims 8 x 2 x 3 = 48 bytes of data from byte offset 16, which end at "
                             "byte offset 64, but the decompressed stream goes on past it (trailing bytes; "
                             "decompression stops there, so they are not counted)");
}

TEST_CASE("idx: a header claiming more than 16 GiB, or samples of more than 2^31 - 1 values, is refused "
          "before any data is read",
          "[idx][bad-input]")
{
    // 2^31 x 2^31 x 1 = 2^62 bytes, plain and gzip (the header alone, 16 bytes).
    const std::string huge = idx_bytes({ 2147483648u, 2147483648u, 1 }, "");
    const std::string message_tail =
        ": header claims 2147483648 x 2147483648 x 1 = 4611686018427387904 bytes of "
        "data from byte offset 16, more than 17179869184 bytes (16 GiB), the most "
        "this reader loads into memory";
    const std::string huge_plain = write_plain("huge.idx", huge);
    expect_refused(images_yaml(huge_plain), huge_plain + message_tail);
    const std::string huge_gz = write_gzip("huge.idx.gz", { huge });
    expect_refused(images_yaml(huge_gz), huge_gz + message_tail);

    // A product past 2^64 does not wrap around.
    const std::string wraps =
        write_plain("wraps.idx", idx_bytes({ 4294967295u, 4294967295u, 4294967295u }, ""));
    expect_refused(images_yaml(wraps),
                   wraps +
                       ": header claims 4294967295 x 4294967295 x 4294967295 = 2^64 or more bytes of data "
                       "from byte offset 16, more than 17179869184 bytes (16 GiB), the most this reader "
                       "loads into memory");

    // 5 x 65536 x 65536 = 5 x 2^32 bytes: just above the limit.
    const std::string above = write_plain("above.idx", idx_bytes({ 5, 65536, 65536 }, ""));
    expect_refused(images_yaml(above),
                   above +
                       ": header claims 5 x 65536 x 65536 = 21474836480 bytes of data from byte offset 16, "
                       "more than 17179869184 bytes (16 GiB), the most this reader loads into memory");

    // 2^31 values per sample (2 GiB in all) is one too many for a flattened sample.
    const std::string wide = write_plain("wide.idx", idx_bytes({ 1, 65536, 32768 }, ""));
    expect_refused(images_yaml(wide),
                   wide + ": header claims samples of 65536 x 32768 = 2147483648 values each, more than "
                          "2147483647 (2^31 - 1), the most one flattened sample may have");
    const std::string wide1 = write_plain("wide1.idx", idx_bytes({ 1, 4294967295u }, ""));
    expect_refused(images_yaml(wide1),
                   wide1 + ": header claims samples of 4294967295 values each, more than 2147483647 "
                           "(2^31 - 1), the most one flattened sample may have");

    // Within both limits (16 GiB exactly; samples of 2^18 values), a short gzip stream is refused where it
    // ends, and the claimed 16 GiB is never allocated: the peak resident memory grows by less than 50 MB.
    const std::string at_limit =
        write_gzip("at_limit.idx.gz", { idx_bytes({ 65536, 512, 512 }, pixels(10)) });
    reset_peak_rss();
    const long before = peak_rss_kib();
    expect_refused(images_yaml(at_limit),
                   at_limit +
                       ": header claims 65536 x 512 x 512 = 17179869184 bytes of data from byte offset "
                       "16, but the data ends at byte offset 26 (offsets in the decompressed stream)");
    CHECK(peak_rss_kib() - before < 50 * 1024);
    // And a plain file's size is known before it is read.
    const std::string at_limit_plain =
        write_plain("at_limit.idx", idx_bytes({ 65536, 512, 512 }, pixels(10)));
    expect_refused(images_yaml(at_limit_plain),
                   at_limit_plain + ": header claims 65536 x 512 x 512 = 17179869184 bytes of data from byte "
                                    "offset 16, but the data ends at byte offset 26");
}

TEST_CASE("idx: a labels file must be rank 1 and have one label per sample", "[idx][bad-input]")
{
    const std::string images = write_plain("eight.idx", idx_bytes({ 8, 2, 3 }, pixels(48)));
    const std::string seven = write_plain("seven_labels.idx", idx_bytes({ 7 }, pixels(7)));
    expect_refused("{images: '" + images + "', labels: '" + seven + "'}",
                   seven + ": holds 7 labels, but " + images + " holds 8 samples");
    const std::string rank3 = write_plain("rank3_labels.idx", idx_bytes({ 8, 2, 3 }, pixels(48)));
    expect_refused("{images: '" + images + "', labels: '" + rank3 + "'}",
                   rank3 + ": a labels file has rank 1 (one byte per sample), but this one has rank 3");
}

TEST_CASE("idx: the engine reports a refused file as a UserError prefixed with the component and plugin file",
          "[idx][bad-input]")
{
    const std::string empty = write_plain("empty_for_engine.idx", "");
    const std::string prefix = "component 'idx' (dataset 'idx' from " + idx_component().file.string() + "): ";
    REQUIRE_THROWS_AS(ansatz::test::make("idx", images_yaml(empty)), ansatz::engine::UserError);
    REQUIRE_THROWS_WITH(ansatz::test::make("idx", images_yaml(empty)),
                        prefix + empty + ": the file is empty (0 bytes), so it is not an IDX file");
}

TEST_CASE(
    "idx: the Fashion-MNIST training set has 60000 28x28 images, image 0 sums to 76247 / 255 and has label 9",
    "[idx][fashion-mnist]")
{
    const std::string dir = "/usr/share/datasets/fashion-mnist/";
    REQUIRE(fs::exists(dir + "train-images-idx3-ubyte.gz")); // installed by the dataset-fashion-mnist package
    auto inst = ansatz::test::make("idx", "{images: " + dir + "train-images-idx3-ubyte.gz, labels: " + dir +
                                              "train-labels-idx1-ubyte.gz}");
    const ansatz_dataset_info i = info(*inst);
    REQUIRE(i.count == 60000);
    REQUIRE(i.sample_rank == 2);
    REQUIRE(i.sample_shape[0] == 28);
    REQUIRE(i.sample_shape[1] == 28);
    REQUIRE(i.has_labels == 1);
    REQUIRE(i.is_image == 1);

    std::vector<float> out, lab;
    Rng rng(1);
    ansatz_status st{};
    REQUIRE(read(*inst, { 0, 59999 }, 784, out, &lab, rng, st) == ANSATZ_STATUS_OK);
    // The sum of image 0's bytes is 76247 (computed once with Python's gzip module); label 9 (ankle boot).
    double bytes = 0;
    for (int j = 0; j < 784; ++j)
        bytes += std::round(out[j] * 255.0);
    CHECK(bytes == 76247.0);
    CHECK(lab[0] == 9.0f);
}
