#include "satoru/web/page.hpp"

#include "satoru/web/http_text.hpp"

namespace satoru::web {

namespace {

constexpr std::string_view stylesheet = R"css(
:root{color-scheme:light dark;--ok:#1a7f37;--warning:#9a6700;--failed:#cf222e;--unknown:#6e7781}
body{font:15px/1.4 system-ui,sans-serif;margin:0 auto;max-width:72rem;padding:1rem}
header{display:flex;justify-content:space-between;align-items:center;flex-wrap:wrap;gap:.5rem}
h1{font-size:1.3rem;margin:0}
.counts{display:flex;gap:1rem;list-style:none;padding:0;flex-wrap:wrap}
.counts li{border:1px solid;border-radius:.4rem;padding:.3rem .7rem}
.counts b{font-size:1.2rem}
.ok{color:var(--ok)}.warning{color:var(--warning)}.failed{color:var(--failed)}.unknown{color:var(--unknown)}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.4rem;border-bottom:1px solid #8884;overflow-wrap:anywhere}
.health{font-weight:600}
.note{color:var(--unknown);font-size:.85rem}
form.login{display:grid;gap:.6rem;max-width:20rem;margin:3rem auto}
input,button{font:inherit;padding:.4rem}
.error{color:var(--failed)}
h2{font-size:1.1rem;margin-top:1.5rem}
form.inline{display:inline}
.stale{color:var(--warning);font-weight:600}.counts .selected{border-width:3px}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem}dl.facts dd{margin:0}
.status.success{color:var(--ok)}.status.warning,.status.cancelled{color:var(--warning)}.status.failed,.status.interrupted{color:var(--failed)}
@media (max-width:40rem){
 thead{display:none}
 tr{display:block;border:1px solid #8884;border-radius:.4rem;margin-bottom:.6rem}
 td{display:flex;justify-content:space-between;gap:1rem;border:0}
 td::before{content:attr(data-label);font-weight:600}
}
)css";

} // namespace

std::string page(std::string_view title, std::string_view body) {
  std::string out =
      "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
      "<title>";
  out += html_escape(title);
  out += "</title><style>";
  out += stylesheet;
  out += "</style></head><body>";
  out += body;
  out += "</body></html>\n";
  return out;
}

std::string login_page(std::string_view message) {
  std::string body = "<form class=\"login\" method=\"post\" action=\"/login\">"
                     "<h1>Satoru</h1>";
  if (!message.empty()) body += "<p class=\"error\">" + html_escape(message) + "</p>";
  body += "<label>Name <input name=\"user\" autocomplete=\"username\" required "
          "autofocus></label><label>Password <input name=\"password\" type=\"password\" "
          "autocomplete=\"current-password\" required></label>"
          "<button type=\"submit\">Log in</button></form>";
  return page("Satoru — log in", body);
}

} // namespace satoru::web
