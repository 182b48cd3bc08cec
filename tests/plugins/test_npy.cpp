// The npy dataset: files written by numpy itself (tests/fixtures/npy/make_fixtures.py, run with
// /usr/bin/python3 when it has numpy, else the committed copies), every version and dtype, the rows
// selected by beta, and every file it must refuse with its exact message.
#include "support/plugins.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace
{

namespace fs = std::filesystem;
using ansatz::Rng;
using ansatz::engine::Instance;

// The fixtures: made by numpy now when it can, else the committed ones.
const fs::path& fixtures()
{
    static const fs::path dir = [] {
        const fs::path committed = fs::path(ANSATZ_TEST_SOURCE_DIR) / "tests/fixtures/npy";
        const fs::path fresh = fs::path(ANSATZ_TEST_WORK_DIR) / "npy_fixtures";
        fs::create_directories(fresh);
        const std::string command = "/usr/bin/python3 " + (committed / "make_fixtures.py").string() + " " +
                                    fresh.string() + " > /dev/null 2>&1";
        if (fs::exists("/usr/bin/python3") && std::system(command.c_str()) == 0)
            return fresh;
        WARN("numpy is not available to /usr/bin/python3: using the committed .npy fixtures");
        return committed;
    }();
    return dir;
}

std::string fixture(const std::string& name)
{
    return (fixtures() / name).string();
}

fs::path work_dir()
{
    const fs::path dir = fs::path(ANSATZ_TEST_WORK_DIR) / "plugins_npy";
    fs::create_directories(dir);
    return dir;
}

std::string read_all(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string write_file(const std::string& name, const std::string& bytes)
{
    const fs::path path = work_dir() / name;
    std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return path.string();
}

// A version-1.0 file with this header text (padded to a multiple of 64 with spaces and '\n', as numpy
// pads) and these data bytes.
std::string npy_v1(const std::string& dict, const std::string& data)
{
    std::string header = dict;
    const size_t total = 10 + header.size() + 1;
    header.append((64 - total % 64) % 64, ' ');
    header += '\n';
    std::string out = "\x93NUMPY";
    out += '\x01';
    out += '\x00';
    out += static_cast<char>(header.size() & 0xff);
    out += static_cast<char>(header.size() >> 8);
    return out + header + data;
}

std::string floats(const std::vector<float>& v)
{
    return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4);
}

ansatz_status create_status(const std::string& yaml)
{
    const ansatz::engine::PluginComponent* c = ansatz::test::in_tree_plugins().find("npy");
    REQUIRE(c != nullptr);
    ansatz::engine::ConfigValues config = ansatz::engine::config_from_yaml(*c->desc, yaml);
    ansatz_status st{};
    void* self = c->desc->create(&config.c("npy"), ansatz::test::test_host().table(), &st);
    if (self)
        c->desc->destroy(self);
    return st;
}

// Expects create() to fail with INVALID_INPUT and exactly this message.
void expect_refused(const std::string& yaml, const std::string& message)
{
    const ansatz_status st = create_status(yaml);
    CHECK(st.code == ANSATZ_STATUS_INVALID_INPUT);
    CHECK(std::string(st.message) == message);
}

void expect_file_refused(const std::string& path, const std::string& message)
{
    expect_refused("{samples: '" + path + "'}", message);
}

ansatz_dataset_info info(const Instance& inst)
{
    ansatz_dataset_info out{};
    ansatz_status st{};
    REQUIRE(inst.dataset().info(inst.self(), &out, &st) == ANSATZ_STATUS_OK);
    return out;
}

// Every row of the dataset, flattened, and the labels when asked.
std::vector<float> all_rows(const Instance& inst, std::vector<float>* labels = nullptr)
{
    const ansatz_dataset_info i = info(inst);
    int64_t d = 1;
    for (int32_t k = 0; k < i.sample_rank; ++k)
        d *= i.sample_shape[k];
    std::vector<int64_t> indices(static_cast<size_t>(i.count));
    for (size_t k = 0; k < indices.size(); ++k)
        indices[k] = static_cast<int64_t>(k);
    std::vector<float> out(static_cast<size_t>(i.count * d));
    if (labels)
        labels->assign(static_cast<size_t>(i.count), -1.0f);
    ansatz_tensor view = ansatz::make_view(out.data(), { i.count, d });
    Rng rng(1);
    ansatz_status st{};
    REQUIRE(inst.dataset().read(inst.self(), indices.data(), i.count, &view,
                                labels ? labels->data() : nullptr, &rng.state(), &st) == ANSATZ_STATUS_OK);
    return out;
}

// The values of make_fixtures.py's `samples`: (arange(12) - 4) / 8 as a 4 x 3 array.
float sample_value(int k)
{
    return static_cast<float>(k - 4) / 8.0f;
}

} // namespace

TEST_CASE("npy: versions 1.0 2.0 and 3.0 of float32 float64 uint8 and bool files read back exactly", "[npy]")
{
    for (const std::string name : { "v1_f32.npy", "v2_f64.npy" })
    {
        INFO(name);
        auto inst = ansatz::test::make("npy", "{samples: '" + fixture(name) + "'}");
        const ansatz_dataset_info i = info(*inst);
        CHECK(i.count == 4);
        REQUIRE(i.sample_rank == 1);
        CHECK(i.sample_shape[0] == 3);
        CHECK(i.has_labels == 0);
        CHECK(i.is_image == 0);
        CHECK(i.domain == ANSATZ_DOMAIN_REAL);
        const std::vector<float> rows = all_rows(*inst);
        for (int k = 0; k < 12; ++k)
            CHECK(rows[static_cast<size_t>(k)] == sample_value(k));
    }
    {
        auto inst = ansatz::test::make("npy", "{samples: '" + fixture("v3_u8.npy") + "'}");
        const ansatz_dataset_info i = info(*inst);
        CHECK(i.count == 2);
        REQUIRE(i.sample_rank == 2);
        CHECK(i.sample_shape[0] == 2);
        CHECK(i.sample_shape[1] == 3);
        CHECK(i.is_image == 0); // values up to 11: not in [0, 1]
        const std::vector<float> rows = all_rows(*inst);
        for (int k = 0; k < 12; ++k)
            CHECK(rows[static_cast<size_t>(k)] == static_cast<float>(k));
    }
    {
        auto inst = ansatz::test::make("npy", "{samples: '" + fixture("v1_bool.npy") + "'}");
        const ansatz_dataset_info i = info(*inst);
        CHECK(i.count == 5);
        CHECK(i.sample_rank == 0); // rank 1: one value per row
        CHECK(i.domain == ANSATZ_DOMAIN_BINARY);
        CHECK(all_rows(*inst) == std::vector<float>{ 1, 0, 1, 1, 0 });
    }
    {
        auto inst = ansatz::test::make("npy", "{samples: '" + fixture("image.npy") + "'}");
        const ansatz_dataset_info i = info(*inst);
        CHECK(i.sample_rank == 2);
        CHECK(i.is_image == 1);
    }
}

TEST_CASE("npy: a header numpy under Python 2 wrote and one with double quotes read too", "[npy]")
{
    const std::string data = floats({ 1, 2, 3, 4, 5, 6 });
    const std::string py2 =
        write_file("py2.npy", npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }", data));
    const std::string quoted = write_file(
        "quoted.npy", npy_v1("{\"shape\": (2, 3), \"fortran_order\": False, \"descr\": \"<f4\"}", data));
    for (const std::string& path : { py2, quoted })
    {
        auto inst = ansatz::test::make("npy", "{samples: '" + path + "'}");
        CHECK(info(*inst).count == 2);
        CHECK(all_rows(*inst) == std::vector<float>{ 1, 2, 3, 4, 5, 6 });
    }
}

TEST_CASE("npy: labels and the beta of each row select and label the rows", "[npy]")
{
    const std::string samples = fixture("v1_f32.npy");
    {
        // betas.npy: 0.5, 1, 0.5, 0.25 -> rows 0 and 2 at beta 0.5.
        auto inst = ansatz::test::make("npy", "{samples: '" + samples + "', betas: '" + fixture("betas.npy") +
                                                  "', labels: '" + fixture("labels.npy") + "', beta: 0.5}");
        CHECK(info(*inst).count == 2);
        CHECK(info(*inst).has_labels == 1);
        std::vector<float> labels;
        const std::vector<float> rows = all_rows(*inst, &labels);
        const std::vector<float> expected = { sample_value(0), sample_value(1), sample_value(2),
                                              sample_value(6), sample_value(7), sample_value(8) };
        CHECK(rows == expected);
        CHECK(labels == std::vector<float>{ 3, 4 });
    }
    {
        // temperature: 4 is beta 0.25: row 3 only.
        auto inst = ansatz::test::make("npy", "{samples: '" + samples + "', betas: '" + fixture("betas.npy") +
                                                  "', temperature: 4}");
        CHECK(all_rows(*inst) == std::vector<float>{ sample_value(9), sample_value(10), sample_value(11) });
    }
    {
        // float32 betas: 0.44 as float32 is 0.4399999976..., within the 1e-6 tolerance of 0.44.
        auto inst = ansatz::test::make("npy", "{samples: '" + samples + "', betas: '" +
                                                  fixture("betas_f32.npy") + "', beta: 0.44}");
        CHECK(info(*inst).count == 2);
    }
    {
        // Without a selection every row, and limit keeps the first ones.
        auto inst = ansatz::test::make("npy", "{samples: '" + samples + "', betas: '" + fixture("betas.npy") +
                                                  "', limit: 3}");
        CHECK(info(*inst).count == 3);
    }
}

TEST_CASE("npy: the domain is found from the values or checked against the key", "[npy]")
{
    auto spins = ansatz::test::make("npy", "{samples: '" + fixture("spins.npy") + "'}");
    CHECK(info(*spins).domain == ANSATZ_DOMAIN_SPIN);
    auto binary = ansatz::test::make("npy", "{samples: '" + fixture("binary.npy") + "'}");
    CHECK(info(*binary).domain == ANSATZ_DOMAIN_BINARY);
    auto real = ansatz::test::make("npy", "{samples: '" + fixture("binary.npy") + "', domain: real}");
    CHECK(info(*real).domain == ANSATZ_DOMAIN_REAL);
    // spins.npy's data start at byte 128; row 0, value 1 is -1 at byte 132.
    expect_refused("{samples: '" + fixture("spins.npy") + "', domain: binary}",
                   fixture("spins.npy") +
                       ": byte 132: row 0, value 1 is -1, but domain: binary takes only 0 and 1");
    expect_refused("{samples: '" + fixture("binary.npy") + "', domain: spin}",
                   fixture("binary.npy") +
                       ": byte 132: row 0, value 1 is 0, but domain: spin takes only -1 and +1");
}

TEST_CASE("npy: spins_to_bits hands an RBM the spins as 0/1 bits", "[npy]")
{
    // spins.npy is [[1, -1, 1], [-1, -1, 1]]: v = (s + 1) / 2.
    auto bits = ansatz::test::make("npy", "{samples: '" + fixture("spins.npy") + "', spins_to_bits: true}");
    CHECK(info(*bits).domain == ANSATZ_DOMAIN_BINARY);
    CHECK(all_rows(*bits) == std::vector<float>{ 1, 0, 1, 0, 0, 1 });
    auto checked = ansatz::test::make("npy", "{samples: '" + fixture("spins.npy") +
                                                 "', spins_to_bits: true, domain: binary}");
    CHECK(all_rows(*checked) == std::vector<float>{ 1, 0, 1, 0, 0, 1 });
}

TEST_CASE("npy: spins_to_bits refuses values that are not spins and domain spin", "[npy][bad-input]")
{
    // binary.npy is [[1, 0, 1], ...]: row 0, value 1 is 0, at byte 128 + 4.
    expect_refused(
        "{samples: '" + fixture("binary.npy") + "', spins_to_bits: true}",
        fixture("binary.npy") +
            ": byte 132: row 0, value 1 is 0, but spins_to_bits: true reads only spins, -1 and +1");
    expect_refused(
        "{samples: '" + fixture("spins.npy") + "', spins_to_bits: true, domain: spin}",
        "spins_to_bits: true turns the spins into 0/1 bits, but domain: spin takes only -1 and +1; "
        "drop one of the two keys");
}

TEST_CASE("npy: majority flips each row of spins to one side of s to -s", "[npy]")
{
    // spins.npy is [[1, -1, 1], [-1, -1, 1]]: row 0 sums to +1, row 1 to -1.
    auto down = ansatz::test::make("npy", "{samples: '" + fixture("spins.npy") + "', majority: down}");
    CHECK(info(*down).domain == ANSATZ_DOMAIN_SPIN);
    CHECK(all_rows(*down) == std::vector<float>{ -1, 1, -1, -1, -1, 1 });
    auto up = ansatz::test::make("npy", "{samples: '" + fixture("spins.npy") + "', majority: up}");
    CHECK(all_rows(*up) == std::vector<float>{ 1, -1, 1, 1, 1, -1 });
    auto any = ansatz::test::make("npy", "{samples: '" + fixture("spins.npy") + "', majority: any}");
    CHECK(all_rows(*any) == std::vector<float>{ 1, -1, 1, -1, -1, 1 });
    // Flipped first, then turned into bits: most bits of every row are 0.
    auto bits = ansatz::test::make("npy", "{samples: '" + fixture("spins.npy") +
                                              "', majority: down, spins_to_bits: true}");
    CHECK(all_rows(*bits) == std::vector<float>{ 0, 1, 0, 0, 0, 1 });
    // A row that sums to 0 is kept as it is, on either side; rows are judged one by one.
    const std::string ties =
        write_file("ties.npy", npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }",
                                      floats({ 1, -1, 1, -1, 1, 1, 1, -1, -1, -1, 1, -1 })));
    auto tie_down = ansatz::test::make("npy", "{samples: '" + ties + "', majority: down}");
    CHECK(all_rows(*tie_down) == std::vector<float>{ 1, -1, 1, -1, -1, -1, -1, 1, -1, -1, 1, -1 });
    auto tie_up = ansatz::test::make("npy", "{samples: '" + ties + "', majority: up}");
    CHECK(all_rows(*tie_up) == std::vector<float>{ 1, -1, 1, -1, 1, 1, 1, -1, 1, 1, -1, 1 });
}

TEST_CASE("npy: majority flips a whole sample of any rank and names the file's row when it refuses", "[npy]")
{
    // Samples of shape (2, 2): rows [[1, 1], [1, -1]] (sum +2), [[-1, 1], [-1, -1]] (sum -2), [[1, 1], [-1,
    // 1]] (sum +2); betas 1, 2, 1.
    const std::string grid =
        write_file("grid.npy", npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2, 2), }",
                                      floats({ 1, 1, 1, -1, -1, 1, -1, -1, 1, 1, -1, 1 })));
    const std::string betas =
        write_file("grid.beta.npy",
                   npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", floats({ 1, 2, 1 })));
    auto down = ansatz::test::make("npy", "{samples: '" + grid + "', majority: down}");
    CHECK(all_rows(*down) == std::vector<float>{ -1, -1, -1, 1, -1, 1, -1, -1, -1, -1, 1, -1 });
    // The rows at beta 1 (file rows 0 and 2), the first of them only.
    auto selected = ansatz::test::make("npy", "{samples: '" + grid + "', betas: '" + betas +
                                                  "', beta: 1, limit: 1, majority: down}");
    CHECK(all_rows(*selected) == std::vector<float>{ -1, -1, -1, 1 });
    // A non-spin in file row 2 (value 2 at byte 128 + 4 * (2 * 4 + 2) = 168) is named by its file row.
    const std::string bad =
        write_file("grid_bad.npy", npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2, 2), }",
                                          floats({ 1, 1, 1, -1, -1, 1, -1, -1, 1, 1, 0.5f, 1 })));
    expect_refused("{samples: '" + bad + "', betas: '" + betas + "', beta: 1, majority: up}",
                   bad + ": byte 168: row 2, value 2 is 0.5, but majority: up reads only spins, -1 and +1");
}

TEST_CASE("npy: majority refuses values that are not spins", "[npy][bad-input]")
{
    expect_refused("{samples: '" + fixture("spins.npy") + "', majority: down, domain: binary}",
                   "majority: down keeps the values -1/+1 spins, but domain: binary takes only 0 and 1; add "
                   "spins_to_bits: true or drop domain");
    // binary.npy is [[1, 0, 1], ...]: row 0, value 1 is 0, at byte 128 + 4.
    expect_refused("{samples: '" + fixture("binary.npy") + "', majority: down}",
                   fixture("binary.npy") +
                       ": byte 132: row 0, value 1 is 0, but majority: down reads only spins, -1 and +1");
    expect_refused("{samples: '" + fixture("binary.npy") + "', majority: up, spins_to_bits: true}",
                   fixture("binary.npy") +
                       ": byte 132: row 0, value 1 is 0, but majority: up reads only spins, -1 and +1");
}

TEST_CASE("npy: files numpy wrote that this reader refuses name the file and the byte", "[npy][bad-input]")
{
    // numpy's version-1.0 headers begin at byte 10: {'descr': at 10, its value at 20; 'fortran_order'
    // value at 45; 'shape' value at 61 (numpy 1.24's layout, found again here so a numpy that spaces
    // them otherwise still passes).
    const auto at = [](const std::string& path, const std::string& text) {
        return std::to_string(read_all(path).find(text));
    };
    const std::string fortran = fixture("fortran.npy");
    expect_file_refused(fortran, fortran + ": byte " + at(fortran, "True") +
                                     ": fortran_order is True (column-major data); save a C-ordered array "
                                     "(numpy.ascontiguousarray) instead");
    const std::string big = fixture("big_endian.npy");
    expect_file_refused(big, big + ": byte " + at(big, "'>f4'") +
                                 ": the dtype '>f4' is big-endian; only little-endian data is read (numpy: "
                                 "x.astype(x.dtype.newbyteorder('<')))");
    const std::string int64 = fixture("int64.npy");
    expect_file_refused(int64, int64 + ": byte " + at(int64, "'<i8'") +
                                   ": the dtype '<i8' is not one this reader takes: float32 '<f4', float64 "
                                   "'<f8', uint8 '|u1' or bool '|b1'");
    const std::string structured = fixture("structured.npy");
    expect_file_refused(structured,
                        structured + ": byte " + at(structured, "[(") +
                            ": the dtype is a structured (record) dtype; only plain float32 '<f4', "
                            "float64 '<f8', uint8 '|u1' and bool '|b1' arrays are read");
    const std::string scalar = fixture("scalar.npy");
    expect_file_refused(scalar,
                        scalar + ": byte " + at(scalar, "()") +
                            ": the shape () is a scalar; a dataset needs at least one axis, the rows");
    const std::string empty_rows = fixture("empty_rows.npy");
    expect_file_refused(empty_rows, empty_rows + ": byte 128: the shape (0, 3) holds no rows");
    // nan.npy: float32 4 x 3 from byte 128; row 1, value 2 is element 5, at byte 148.
    const std::string nan = fixture("nan.npy");
    expect_file_refused(nan, nan + ": byte 148: row 1, value 2 is NaN; the data must be finite");
    // inf.npy: version 2.0, float64 from byte 128; row 2, value 0 is element 6, at byte 176.
    const std::string inf = fixture("inf.npy");
    expect_file_refused(inf, inf + ": byte 176: row 2, value 0 is -inf; the data must be finite");
}

TEST_CASE("npy: hostile files are refused with one sentence naming the file and the byte", "[npy][bad-input]")
{
    const std::string good = read_all(fixture("v1_f32.npy")); // 128-byte header, 48 bytes of data
    REQUIRE(good.size() == 176);

    expect_file_refused(write_file("empty.npy", ""),
                        (work_dir() / "empty.npy").string() +
                            ": byte 0: the file is empty, so it is not a .npy file");
    expect_file_refused(
        write_file("magic.npy", "\x93NUMPX" + good.substr(6)),
        (work_dir() / "magic.npy").string() +
            ": byte 5: the file does not begin with the magic string \\x93NUMPY, so it is not a "
            ".npy file");
    expect_file_refused(
        write_file("short_magic.npy", "\x93NUM"),
        (work_dir() / "short_magic.npy").string() +
            ": byte 4: the file ends inside the magic string \\x93NUMPY, so it is not a .npy file");
    expect_file_refused(write_file("no_version.npy", good.substr(0, 7)),
                        (work_dir() / "no_version.npy").string() +
                            ": byte 7: the file ends before the format version (bytes 6 and 7)");
    std::string v4 = good;
    v4[6] = 4;
    expect_file_refused(write_file("v4.npy", v4),
                        (work_dir() / "v4.npy").string() +
                            ": byte 6: .npy format version 4.0 is not one this reader "
                            "knows (1.0, 2.0 and 3.0)");
    std::string v11 = good;
    v11[7] = 1;
    expect_file_refused(write_file("v11.npy", v11),
                        (work_dir() / "v11.npy").string() +
                            ": byte 6: .npy format version 1.1 is not one this reader "
                            "knows (1.0, 2.0 and 3.0)");
    expect_file_refused(write_file("no_length.npy", good.substr(0, 9)),
                        (work_dir() / "no_length.npy").string() +
                            ": byte 9: the file ends inside the header length (bytes 8 to 9)");
    expect_file_refused(
        write_file("cut_header.npy", good.substr(0, 60)),
        (work_dir() / "cut_header.npy").string() +
            ": byte 8: the header length is 118 bytes, so the header ends at byte 128, but the "
            "file ends at byte 60");
    expect_file_refused(
        write_file("short_data.npy", good.substr(0, 170)),
        (work_dir() / "short_data.npy").string() +
            ": byte 128: the shape (4, 3) of float32 needs 48 bytes of data from byte 128, but "
            "the file ends at byte 170 (42 bytes of data)");
    expect_file_refused(
        write_file("long_data.npy", good + "xyz"),
        (work_dir() / "long_data.npy").string() +
            ": byte 176: the shape (4, 3) of float32 needs 48 bytes of data from byte 128, but "
            "the file goes on to byte 179 (3 bytes after the data)");

    const std::string data = floats({ 1, 2, 3, 4, 5, 6 });
    expect_file_refused(
        write_file("no_shape.npy", npy_v1("{'descr': '<f4', 'fortran_order': False, }", data)),
        (work_dir() / "no_shape.npy").string() + ": byte 64: the header has no 'shape' key");
    expect_file_refused(
        write_file("extra_key.npy",
                   npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}", data)),
        (work_dir() / "extra_key.npy").string() +
            ": byte 68: the header has the key 'x', but a .npy header has exactly the keys 'descr', "
            "'fortran_order' and 'shape'");
    expect_file_refused(
        write_file("twice.npy",
                   npy_v1("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}", data)),
        (work_dir() / "twice.npy").string() + ": byte 27: the header gives the key 'descr' twice");
    expect_file_refused(
        write_file("not_dict.npy", npy_v1("['descr', '<f4']", data)),
        (work_dir() / "not_dict.npy").string() +
            ": byte 10: the header does not begin with '{', so it is not a Python dict literal");
    expect_file_refused(
        write_file("bad_shape.npy",
                   npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3)}", data)),
        (work_dir() / "bad_shape.npy").string() +
            ": byte 64: the shape has '-' where a non-negative integer belongs");
    expect_file_refused(
        write_file("paren_shape.npy", npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (6)}", data)),
        (work_dir() / "paren_shape.npy").string() +
            ": byte 60: the shape (6) is a parenthesised integer, not a tuple (numpy writes (6,))");
    expect_file_refused(
        write_file("fortran_text.npy", npy_v1("{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3)}", data)),
        (work_dir() / "fortran_text.npy").string() +
            ": byte 44: the value of 'fortran_order' is '0', not True or False");
    expect_file_refused(
        write_file("trailing.npy",
                   npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)} x", data)),
        (work_dir() / "trailing.npy").string() + ": byte 68: the header has 'x' after its closing '}'");
    expect_file_refused(write_file("open_string.npy", npy_v1("{'descr: <f4}", data)),
                        (work_dir() / "open_string.npy").string() +
                            ": byte 11: the header's string that begins here is not closed on its line");
    expect_file_refused(
        write_file("bool_byte.npy", npy_v1("{'descr': '|b1', 'fortran_order': False, 'shape': (3,)}",
                                           std::string("\x01\x00\x02", 3))),
        (work_dir() / "bool_byte.npy").string() +
            ": byte 130: row 2, value 0 is the bool byte 0x02, not 0 or 1");
    expect_file_refused(
        write_file(
            "rank8.npy",
            npy_v1("{'descr': '|u1', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 1)}", "x")),
        (work_dir() / "rank8.npy").string() +
            ": byte 60: the shape has 8 axes; at most 7 are read (the rows and a sample of rank 6)");
    expect_file_refused(write_file("huge.npy", npy_v1("{'descr': '<f8', 'fortran_order': False, "
                                                      "'shape': (4294967296, 4294967296, 4294967296)}",
                                                      "")),
                        (work_dir() / "huge.npy").string() +
                            ": byte 128: the shape (4294967296, 4294967296, 4294967296) of float64 needs "
                            "more than 2^64 bytes of "
                            "data from byte 128, but the file ends at byte 128 (0 bytes of data)");

    // Not a regular file.
    expect_file_refused(work_dir().string(),
                        work_dir().string() +
                            ": is a folder, not a regular file; .npy data is read from regular "
                            "files only");
}

TEST_CASE("npy: the betas and labels files and the selection keys are checked", "[npy][bad-input]")
{
    const std::string samples = fixture("v1_f32.npy");
    const std::string betas = fixture("betas.npy");
    expect_refused("{samples: '" + samples + "', betas: '" + betas + "', beta: 0.3}",
                   betas + " has no row at beta 0.3; its betas are 0.25, 0.5 and 1");
    expect_refused(
        "{samples: '" + samples + "', betas: '" + betas + "', temperature: 3}",
        betas + " has no row at beta 0.3333333333333333 (temperature 3); its betas are 0.25, 0.5 and 1");
    expect_refused("{samples: '" + samples + "', betas: '" + betas + "', beta: 0.5, temperature: 2}",
                   "keys beta and temperature exclude each other; give one of them");
    expect_refused(
        "{samples: '" + samples + "', beta: 0.5}",
        "key beta selects rows by their beta, which the key betas (a .npy file of one beta per row) "
        "gives; set betas too");
    expect_refused("{samples: '" + samples + "', betas: '" + fixture("betas_2d.npy") + "'}",
                   fixture("betas_2d.npy") +
                       ": has shape (4, 1), but the betas file holds one value per row of " + samples +
                       ", shape (4,)");
    expect_refused("{samples: '" + samples + "', betas: '" + fixture("betas_short.npy") + "'}",
                   fixture("betas_short.npy") +
                       ": has shape (3,), but the betas file holds one value per row of " + samples +
                       ", shape (4,)");
    expect_refused("{samples: '" + samples + "', betas: '" + fixture("betas_u8.npy") + "'}",
                   fixture("betas_u8.npy") +
                       ": holds uint8, but the betas file holds float32 or float64 values");
    expect_refused("{samples: '" + samples + "', labels: '" + fixture("betas_short.npy") + "'}",
                   fixture("betas_short.npy") +
                       ": has shape (3,), but the labels file holds one value per row of " + samples +
                       ", shape (4,)");
}
