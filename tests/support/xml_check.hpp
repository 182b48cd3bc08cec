// support/xml_check.hpp -- a small well-formedness checker for XML 1.0 (the SVG plots, and
// report.html, which is written XHTML-style so that it is XML too).
//
// Checks: one root element; start and end tags nested and matched; names; attributes quoted and
// not repeated; '<' never in text or attribute values; every '&' the start of &amp; &lt; &gt; &quot;
// &apos; or a character reference; comments, CDATA sections and processing instructions closed; an
// optional XML declaration and DOCTYPE (without an internal subset) before the root. Does not check
// encodings, namespaces or validity against a schema.
#pragma once

#include <string>

namespace ansatz::test
{

// "" when `text` is well-formed, else what is wrong first, and where: "line 3, column 7: ...".
std::string xml_problem(const std::string& text);

} // namespace ansatz::test
