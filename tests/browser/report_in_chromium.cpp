// report.html in a real browser: a small real run, then headless Chromium renders its report to a
// PNG, which must not be blank, with no console message (an error, or a picture that did not load:
// each <img> of the report logs one through its onerror handler), and with every <svg> and <img> of
// the file in the browser's DOM.
//
// A control page first proves that Chromium runs here and that its console reaches this test: a page
// with a failing picture and a console.error must show both. Where Chromium is missing or cannot
// start, the test says why and exits 77, which ctest reports as skipped (SKIP_RETURN_CODE), never as
// passed. The screenshot is kept: tests/work/browser/report.png in the build folder.
#include "support/cli.hpp"
#include "support/xml_check.hpp"

#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <unordered_map>
#include <vector>

namespace fs = std::filesystem;
using ansatz::test::read_text;
using ansatz::test::write_text;

namespace
{

constexpr int skipped = 77;

int skip(const std::string& why)
{
    std::printf("SKIPPED: %s\n", why.c_str());
    return skipped;
}

int fail(const std::string& why)
{
    std::printf("FAILED: %s\n", why.c_str());
    return 1;
}

std::string quote(const std::string& s)
{
    std::string out = "'";
    for (char c : s)
        out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

std::string find_chromium()
{
    if (const char* given = std::getenv("ANSATZ_CHROMIUM"); given && *given)
        return given;
    const char* path = std::getenv("PATH");
    std::string folders = path ? path : "/usr/bin:/bin";
    size_t start = 0;
    while (start <= folders.size())
    {
        size_t end = folders.find(':', start);
        if (end == std::string::npos)
            end = folders.size();
        const fs::path folder = folders.substr(start, end - start);
        for (const char* name : { "chromium", "chromium-browser", "google-chrome" })
            if (!folder.empty() && access((folder / name).c_str(), X_OK) == 0)
                return (folder / name).string();
        start = end + 1;
    }
    return {};
}

struct Browser
{
    int status = -1;
    std::string out;
    std::string err;
};

// Runs headless Chromium on `page` with `mode` (--screenshot=..., --dump-dom), its console on stderr.
Browser chromium(const std::string& binary, const fs::path& work, const fs::path& page,
                 const std::string& mode)
{
    static int counter = 0;
    const fs::path profile = work / ("profile" + std::to_string(counter++));
    fs::remove_all(profile);
    fs::create_directories(profile);
    const fs::path out = work / "chromium.out", err = work / "chromium.err";
    const std::string command =
        "env HOME=" + quote(profile.string()) + " timeout 120 " + quote(binary) +
        " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking"
        " --disable-component-update --disable-sync --hide-scrollbars --user-data-dir=" +
        quote(profile.string()) + " --enable-logging=stderr --v=0 --window-size=1280,2000 " + mode + " " +
        quote("file://" + fs::absolute(page).string()) + " </dev/null >" + quote(out.string()) + " 2>" +
        quote(err.string());
    const int raw = std::system(command.c_str());
    Browser b;
    b.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
    b.out = read_text(out);
    b.err = read_text(err);
    fs::remove_all(profile);
    return b;
}

std::vector<std::string> console_lines(const std::string& err)
{
    std::vector<std::string> out;
    size_t start = 0;
    while (start < err.size())
    {
        size_t end = err.find('\n', start);
        if (end == std::string::npos)
            end = err.size();
        const std::string line = err.substr(start, end - start);
        if (line.find(":CONSOLE") != std::string::npos)
            out.push_back(line);
        start = end + 1;
    }
    return out;
}

std::string tail(const std::string& text, size_t lines)
{
    std::vector<std::string> all;
    size_t start = 0;
    while (start < text.size())
    {
        size_t end = text.find('\n', start);
        if (end == std::string::npos)
            end = text.size();
        all.push_back(text.substr(start, end - start));
        start = end + 1;
    }
    std::string out;
    for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i)
        out += "  " + all[i] + "\n";
    return out.empty() ? "  (nothing)\n" : out;
}

size_t count_of(const std::string& text, const std::string& what)
{
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
        ++n;
    return n;
}

// ---- a PNG decoder for what Chromium writes: 8-bit RGB or RGBA, not interlaced, any filters.
struct Image
{
    int width = 0, height = 0;
    std::vector<uint8_t> rgb; // 3 bytes per pixel
};

uint32_t be32(const std::string& s, size_t at)
{
    return (uint32_t(uint8_t(s[at])) << 24) | (uint32_t(uint8_t(s[at + 1])) << 16) |
           (uint32_t(uint8_t(s[at + 2])) << 8) | uint32_t(uint8_t(s[at + 3]));
}

std::string decode_png(const std::string& png, Image& image)
{
    if (png.size() < 33 || png.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0)
        return "not a PNG file";
    std::string idat;
    int depth = 0, colour = 0, interlace = 0;
    for (size_t at = 8; at + 12 <= png.size();)
    {
        const uint32_t length = be32(png, at);
        const std::string type = png.substr(at + 4, 4);
        if (at + 12 + length > png.size())
            return "a truncated chunk";
        if (type == "IHDR")
        {
            image.width = static_cast<int>(be32(png, at + 8));
            image.height = static_cast<int>(be32(png, at + 12));
            depth = uint8_t(png[at + 16]);
            colour = uint8_t(png[at + 17]);
            interlace = uint8_t(png[at + 20]);
        }
        else if (type == "IDAT")
            idat += png.substr(at + 8, length);
        at += 12 + length;
    }
    if (depth != 8 || (colour != 2 && colour != 6) || interlace != 0)
        return "a PNG of bit depth " + std::to_string(depth) + ", colour type " + std::to_string(colour) +
               ", interlace " + std::to_string(interlace) +
               " (only 8-bit RGB/RGBA, not interlaced, is decoded)";
    const size_t bpp = colour == 6 ? 4 : 3, stride = static_cast<size_t>(image.width) * bpp;
    std::vector<uint8_t> raw((stride + 1) * static_cast<size_t>(image.height));
    uLongf size = static_cast<uLongf>(raw.size());
    if (uncompress(raw.data(), &size, reinterpret_cast<const Bytef*>(idat.data()),
                   static_cast<uLong>(idat.size())) != Z_OK ||
        size != raw.size())
        return "its image data does not inflate to " + std::to_string(raw.size()) + " bytes";
    std::vector<uint8_t> previous(stride, 0), line(stride);
    image.rgb.clear();
    for (int y = 0; y < image.height; ++y)
    {
        const uint8_t* row = raw.data() + static_cast<size_t>(y) * (stride + 1);
        const int filter = row[0];
        for (size_t x = 0; x < stride; ++x)
        {
            const int a = x >= bpp ? line[x - bpp] : 0, b = previous[x], c = x >= bpp ? previous[x - bpp] : 0;
            int predicted = 0;
            if (filter == 1)
                predicted = a;
            else if (filter == 2)
                predicted = b;
            else if (filter == 3)
                predicted = (a + b) / 2;
            else if (filter == 4)
            {
                const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
                predicted = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
            }
            else if (filter != 0)
                return "an unknown PNG filter " + std::to_string(filter);
            line[x] = static_cast<uint8_t>(row[1 + x] + predicted);
        }
        for (int x = 0; x < image.width; ++x)
            image.rgb.insert(image.rgb.end(), line.begin() + x * bpp, line.begin() + x * bpp + 3);
        previous = line;
    }
    return {};
}

// ---- the run: bars and stripes of 8 x 8 pixels, a few epochs, a grid of samples
std::string images_idx()
{
    std::string s("\x00\x00\x08\x03\x00\x00\x00\x60\x00\x00\x00\x08\x00\x00\x00\x08", 16);
    for (int i = 0; i < 96; ++i)
    {
        const bool bars = i % 2 == 0;
        const int pattern = (i * 37 + 11) % 255 + 1;
        for (int y = 0; y < 8; ++y)
            for (int x = 0; x < 8; ++x)
                s += static_cast<char>((pattern >> (bars ? x : y)) & 1 ? 235 : 15);
    }
    return s;
}

const char* const pipeline = R"(# A small run whose report a browser renders.
pipeline: browser
seed: 11
threads: 1
components:
  data:  {plugin: idx, images: images.idx, binarize: 0.5}
  rbm:   {plugin: rbm, hidden: 16}
  gibbs: {plugin: gibbs}
  pcd:   {plugin: contrastive_divergence, persistent: true}
  sgd:   {plugin: sgd, learning_rate: 0.05, momentum: 0.5}
stages:
  - train:  {model: rbm, data: data, loss: pcd, sampler: gibbs, optimizer: sgd, epochs: 12, batch_size: 8}
  - sample: {model: rbm, sampler: gibbs, count: 36, steps: 200}
)";

} // namespace

int main()
{
    const std::string binary = find_chromium();
    if (binary.empty())
        return skip(
            "no Chromium found (chromium, chromium-browser or google-chrome on PATH, or $ANSATZ_CHROMIUM); "
            "`bash .ci/setup test` installs Debian's chromium");
    std::printf("browser: %s\n", binary.c_str());

    // A real run, and its report.
    const fs::path work = ansatz::test::fresh_folder("browser");
    write_text(work / "images.idx", images_idx());
    write_text(work / "pipeline.yaml", pipeline);
    const auto run = ansatz::test::run_ansatz({ "run", "pipeline.yaml", "--runs", "runs" }, work);
    if (run.status != 0)
        return fail("ansatz run exited with " + std::to_string(run.status) + ":\n" + run.err);
    const fs::path folder = work / run.out.substr(0, run.out.find('\n'));
    const fs::path report = folder / "report.html";
    const std::string html = read_text(report);
    if (html.empty())
        return fail("the run wrote no " + report.string());
    if (const std::string problem = ansatz::test::xml_problem(html); !problem.empty())
        return fail("report.html is not well-formed: " + problem);
    // Every relative link and picture of the page is in the folder.
    const std::regex reference("(src|href)=\"([^\"#]+)\"");
    for (auto it = std::sregex_iterator(html.begin(), html.end(), reference); it != std::sregex_iterator();
         ++it)
        if (!fs::exists(folder / (*it)[2].str()))
            return fail("report.html refers to " + (*it)[2].str() + ", which is not in " + folder.string());
    std::printf("report: %s (%zu bytes, %zu inline plots, %zu pictures)\n", report.c_str(), html.size(),
                count_of(html, "<svg"), count_of(html, "<img"));

    // The control: Chromium runs, and its console reaches this test.
    write_text(
        work / "control.html",
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"/><title>control</title></head><body>"
        "<p>control page</p><img src=\"absent.png\" onerror=\"console.error('control: picture not found')\"/>"
        "<script>console.error('control: an error')</script></body></html>");
    const Browser control =
        chromium(binary, work, work / "control.html", "--screenshot=" + (work / "control.png").string());
    if (control.status != 0 || !fs::exists(work / "control.png"))
        return skip("Chromium cannot run here (exit status " + std::to_string(control.status) +
                    "); its last words:\n" + tail(control.err, 8));
    const std::vector<std::string> control_console = console_lines(control.err);
    if (control_console.size() < 2)
        return fail("Chromium ran, but the control page's two console errors did not reach its log (" +
                    std::to_string(control_console.size()) +
                    " seen), so a clean console would prove nothing");

    // The report: a screenshot, and the console.
    const fs::path shot = work / "report.png";
    const Browser rendered = chromium(binary, work, report, "--screenshot=" + shot.string());
    if (rendered.status != 0 || !fs::exists(shot))
        return fail("Chromium did not render the report (exit status " + std::to_string(rendered.status) +
                    "):\n" + tail(rendered.err, 8));
    const std::vector<std::string> console = console_lines(rendered.err);
    if (!console.empty())
    {
        std::string lines;
        for (const std::string& l : console)
            lines += "  " + l + "\n";
        return fail("the report logged to the console:\n" + lines);
    }

    // The page as the browser built it: every plot and picture there, no picture that failed to load.
    const Browser dom = chromium(binary, work, report, "--dump-dom");
    if (dom.status != 0 || dom.out.find("</html>") == std::string::npos)
        return fail("Chromium did not dump the report's DOM (exit status " + std::to_string(dom.status) +
                    ")");
    if (count_of(dom.out, "<svg") != count_of(html, "<svg") ||
        count_of(dom.out, "<img") != count_of(html, "<img"))
        return fail("the browser's DOM has " + std::to_string(count_of(dom.out, "<svg")) + " svg and " +
                    std::to_string(count_of(dom.out, "<img")) + " img elements; the file has " +
                    std::to_string(count_of(html, "<svg")) + " and " +
                    std::to_string(count_of(html, "<img")));
    if (dom.out.find("class=\"missing\"") != std::string::npos)
        return fail("a picture of the report did not load in the browser");

    // Not blank: many colours, much that is not white, and the dark header band where the CSS puts it.
    Image image;
    if (const std::string problem = decode_png(read_text(shot), image); !problem.empty())
        return fail("the screenshot " + shot.string() + " could not be decoded: " + problem);
    std::unordered_map<uint32_t, size_t> colours;
    size_t not_white = 0, dark_top = 0;
    const size_t pixels = static_cast<size_t>(image.width) * static_cast<size_t>(image.height);
    for (size_t i = 0; i < pixels; ++i)
    {
        const uint8_t r = image.rgb[3 * i], g = image.rgb[3 * i + 1], b = image.rgb[3 * i + 2];
        ++colours[(uint32_t(r) << 16) | (uint32_t(g) << 8) | b];
        not_white += r < 250 || g < 250 || b < 250;
        if (i < static_cast<size_t>(image.width) * 100)
            dark_top += r + g + b < 3 * 128;
    }
    size_t background = 0; // the most common colour
    for (const auto& [colour, count] : colours)
        background = std::max(background, count);
    const double drawn_share = 1 - static_cast<double>(background) / static_cast<double>(pixels);
    const double not_white_share = static_cast<double>(not_white) / static_cast<double>(pixels);
    const double dark_top_share = static_cast<double>(dark_top) / (static_cast<double>(image.width) * 100);
    std::printf("screenshot: %s (%d x %d): %zu colours, %.0f%% not white, %.0f%% not the background colour, "
                "%.0f%% of the top 100 rows dark\n",
                shot.c_str(), image.width, image.height, colours.size(), 100 * not_white_share,
                100 * drawn_share, 100 * dark_top_share);
    if (image.width != 1280 || image.height != 2000)
        return fail("the screenshot is " + std::to_string(image.width) + " x " +
                    std::to_string(image.height) + ", not the 1280 x 2000 asked for");
    if (colours.size() < 200)
        return fail("the screenshot has only " + std::to_string(colours.size()) +
                    " colours: blank or unstyled");
    if (not_white_share < 0.2 || drawn_share < 0.2)
        return fail("the screenshot is almost one colour");
    if (dark_top_share < 0.5)
        return fail(
            "the report's dark header band is not at the top of the screenshot: its CSS did not apply");
    std::printf(
        "the report renders in Chromium: not blank, no console message, every plot and picture there\n");
    return 0;
}
