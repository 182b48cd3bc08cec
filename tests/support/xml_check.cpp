#include "support/xml_check.hpp"

#include <cctype>
#include <set>
#include <vector>

namespace ansatz::test
{

namespace
{

class Checker
{
public:
    explicit Checker(const std::string& text) : s_(text) {}

    std::string run()
    {
        try
        {
            prolog();
            if (at_end() || s_[i_] != '<')
                fail("no root element");
            element();
            misc(); // comments, PIs and blanks after the root
            if (!at_end())
                fail("content after the root element");
        }
        catch (const std::string& problem)
        {
            return problem;
        }
        return {};
    }

private:
    [[noreturn]] void fail(const std::string& what) const
    {
        size_t line = 1, column = 1;
        for (size_t k = 0; k < i_ && k < s_.size(); ++k)
            if (s_[k] == '\n')
            {
                ++line;
                column = 1;
            }
            else
                ++column;
        throw "line " + std::to_string(line) + ", column " + std::to_string(column) + ": " + what;
    }

    bool at_end() const { return i_ >= s_.size(); }
    bool starts(const char* what) const
    {
        return s_.compare(i_, std::char_traits<char>::length(what), what) == 0;
    }
    void blanks()
    {
        while (!at_end() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
            ++i_;
    }
    void skip_past(const char* end, const char* what)
    {
        const size_t found = s_.find(end, i_);
        if (found == std::string::npos)
            fail(std::string(what) + " is never closed");
        i_ = found + std::char_traits<char>::length(end);
    }

    static bool name_start(unsigned char c) { return std::isalpha(c) || c == '_' || c == ':' || c >= 0x80; }
    static bool name_char(unsigned char c)
    {
        return name_start(c) || std::isdigit(c) || c == '-' || c == '.';
    }
    std::string name()
    {
        if (at_end() || !name_start(static_cast<unsigned char>(s_[i_])))
            fail("a name was expected");
        const size_t start = i_;
        while (!at_end() && name_char(static_cast<unsigned char>(s_[i_])))
            ++i_;
        return s_.substr(start, i_ - start);
    }

    // At '&': a known entity or a character reference.
    void reference()
    {
        const size_t end = s_.find(';', i_);
        if (end == std::string::npos || end - i_ > 12)
            fail("'&' that does not start a reference (write &amp;)");
        const std::string ref = s_.substr(i_ + 1, end - i_ - 1);
        static const std::set<std::string> known = { "amp", "lt", "gt", "quot", "apos" };
        bool ok = known.count(ref) > 0;
        if (!ok && ref.size() > 1 && ref[0] == '#')
        {
            const bool hex = ref[1] == 'x';
            const std::string digits = ref.substr(hex ? 2 : 1);
            ok = !digits.empty();
            for (char c : digits)
                ok = ok && (hex ? std::isxdigit(static_cast<unsigned char>(c))
                                : std::isdigit(static_cast<unsigned char>(c)));
        }
        if (!ok)
            fail("unknown entity &" + ref + "; (XML knows only amp, lt, gt, quot, apos)");
        i_ = end + 1;
    }

    void prolog()
    {
        if (starts("\xef\xbb\xbf"))
            i_ += 3;
        if (starts("<?xml"))
            skip_past("?>", "the XML declaration");
        misc();
        if (starts("<!DOCTYPE"))
        {
            const size_t end = s_.find('>', i_);
            if (end == std::string::npos)
                fail("the DOCTYPE is never closed");
            if (s_.substr(i_, end - i_).find('[') != std::string::npos)
                fail("a DOCTYPE with an internal subset is not supported here");
            i_ = end + 1;
            misc();
        }
    }

    void misc()
    {
        for (;;)
        {
            blanks();
            if (starts("<!--"))
                comment();
            else if (starts("<?"))
                skip_past("?>", "a processing instruction");
            else
                return;
        }
    }

    void comment()
    {
        i_ += 4;
        const size_t end = s_.find("--", i_);
        if (end == std::string::npos)
            fail("a comment is never closed");
        if (s_.compare(end, 3, "-->") != 0)
            fail("'--' inside a comment");
        i_ = end + 3;
    }

    void element()
    {
        std::vector<std::string> open;
        do
        {
            // At '<' of a start tag.
            ++i_;
            const std::string tag = name();
            std::set<std::string> attributes;
            bool empty = false;
            for (;;)
            {
                const size_t before = i_;
                blanks();
                if (at_end())
                    fail("the tag <" + tag + "> is never closed");
                if (s_[i_] == '>')
                {
                    ++i_;
                    break;
                }
                if (starts("/>"))
                {
                    i_ += 2;
                    empty = true;
                    break;
                }
                if (i_ == before)
                    fail("a blank was expected between attributes of <" + tag + ">");
                const std::string attribute = name();
                if (!attributes.insert(attribute).second)
                    fail("attribute " + attribute + " given twice in <" + tag + ">");
                blanks();
                if (at_end() || s_[i_] != '=')
                    fail("attribute " + attribute + " of <" + tag + "> has no value");
                ++i_;
                blanks();
                if (at_end() || (s_[i_] != '"' && s_[i_] != '\''))
                    fail("the value of attribute " + attribute + " of <" + tag + "> is not quoted");
                const char quote = s_[i_++];
                while (!at_end() && s_[i_] != quote)
                {
                    if (s_[i_] == '<')
                        fail("'<' in the value of attribute " + attribute);
                    if (s_[i_] == '&')
                        reference();
                    else
                        ++i_;
                }
                if (at_end())
                    fail("the value of attribute " + attribute + " is never closed");
                ++i_;
            }
            if (!empty)
                open.push_back(tag);
            // Content until the next start tag, or the end tags that close elements.
            while (!open.empty())
            {
                if (at_end())
                    fail("<" + open.back() + "> is never closed");
                if (s_[i_] == '&')
                    reference();
                else if (starts("<!--"))
                    comment();
                else if (starts("<![CDATA["))
                    skip_past("]]>", "a CDATA section");
                else if (starts("<?"))
                    skip_past("?>", "a processing instruction");
                else if (starts("</"))
                {
                    i_ += 2;
                    const std::string closing = name();
                    blanks();
                    if (at_end() || s_[i_] != '>')
                        fail("the end tag </" + closing + "> is not closed by '>'");
                    if (closing != open.back())
                        fail("</" + closing + "> closes <" + open.back() + ">");
                    ++i_;
                    open.pop_back();
                }
                else if (s_[i_] == '<')
                    break; // a child's start tag
                else if (starts("]]>"))
                    fail("']]>' in text");
                else
                    ++i_;
            }
        } while (!open.empty());
    }

    const std::string& s_;
    size_t i_ = 0;
};

} // namespace

std::string xml_problem(const std::string& text)
{
    return Checker(text).run();
}

} // namespace ansatz::test
