#include "satoru/web/server.hpp"

#include "satoru/time.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <optional>
#include <thread>
#include <vector>

namespace satoru::web {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct web_server::impl {
  server_limits limits;
  std::shared_ptr<console> routes;
  std::atomic<int> connections{0};
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::vector<std::thread> threads;

  void accept();
};

namespace {

/// One client connection: read a request, answer it, again while kept alive.
class connection : public std::enable_shared_from_this<connection> {
public:
  connection(web_server::impl& server, tcp::socket socket, std::string client)
      : server_(server)
      , stream_(std::move(socket))
      , client_(std::move(client)) {
    ++server_.connections;
  }
  ~connection() { --server_.connections; }

  void run() {
    asio::dispatch(stream_.get_executor(),
                   [self = shared_from_this()] { self->read(true); });
  }

private:
  void read(bool first) {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_.limits.header_limit));
    parser_->body_limit(server_.limits.body_limit);
    // A slow client gets this long for its whole request (slow loris);
    // the first request of a connection is due at once, later ones after idling.
    stream_.expires_after(first ? server_.limits.read_timeout
                                : server_.limits.idle_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       self->on_read(ec);
                     });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::header_limit || ec == http::error::body_limit) {
      reply(ec == http::error::body_limit
                ? http::status::payload_too_large
                : http::status::request_header_fields_too_large);
      return;
    }
    if (ec) return close();
    try {
      response_ = server_.routes->handle(parser_->get(), client_, now_ms());
    } catch (const std::exception& e) {
      spdlog::error("web console: request failed: {}", e.what());
      reply(http::status::internal_server_error);
      return;
    }
    write();
  }

  /// A bare error response that ends the connection.
  void reply(http::status status) {
    response_ = http_response{status, 11};
    response_.set(http::field::content_type, "text/plain; charset=utf-8");
    response_.body() = std::string(http::obsolete_reason(status)) + "\n";
    response_.keep_alive(false);
    response_.prepare_payload();
    write();
  }

  void write() {
    stream_.expires_after(server_.limits.write_timeout);
    http::async_write(stream_, response_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
                        if (ec || !self->response_.keep_alive()) return self->close();
                        self->read(false);
                      });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  web_server::impl& server_;
  beast::tcp_stream stream_;
  std::string client_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http_response response_;
};

/// "host:port" / "[v6]:port" split in two.
bool split_listen(const std::string& listen, std::string& host, std::string& port) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  host = listen.substr(0, colon);
  port = listen.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return !host.empty() && !port.empty();
}

} // namespace

void web_server::impl::accept() {
  acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec,
                                                       tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      beast::error_code peer_ec;
      auto peer = socket.remote_endpoint(peer_ec);
      if (peer_ec || connections.load() >= limits.max_connections) {
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        std::make_shared<connection>(*this, std::move(socket), peer.address().to_string())
            ->run();
      }
    }
    accept();
  });
}

web_server::web_server(std::unique_ptr<impl> i)
    : impl_(std::move(i)) {}

web_server::~web_server() {
  stop();
}

expected<std::unique_ptr<web_server>> web_server::start(const std::string& listen,
                                                        std::shared_ptr<console> routes,
                                                        server_limits limits) {
  auto fail = [&](const std::string& why) {
    return error{errc::io, "cannot serve the web console on " + listen + ": " + why};
  };
  std::string host, port;
  if (!split_listen(listen, host, port)) return fail("not host:port");
  auto i = std::make_unique<impl>();
  i->limits = limits;
  i->routes = std::move(routes);
  beast::error_code ec;
  tcp::resolver resolver{i->ioc};
  auto endpoints = resolver.resolve(host, port, tcp::resolver::passive, ec);
  if (ec || endpoints.empty()) return fail(ec ? ec.message() : "no address");
  tcp::endpoint at = endpoints.begin()->endpoint();
  if (i->acceptor.open(at.protocol(), ec) ||
      i->acceptor.set_option(asio::socket_base::reuse_address(true), ec) ||
      i->acceptor.bind(at, ec) ||
      i->acceptor.listen(asio::socket_base::max_listen_connections, ec))
    return fail(ec.message());
  i->accept();
  for (int t = 0; t < std::max(1, limits.threads); ++t)
    i->threads.emplace_back([ioc = &i->ioc] {
      // Handlers take error codes; this only guards against the unexpected.
      for (;;) {
        try {
          ioc->run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("web console: {}", e.what());
        }
      }
    });
  return std::unique_ptr<web_server>(new web_server(std::move(i)));
}

void web_server::stop() {
  if (!impl_) return;
  impl_->ioc.stop();
  for (auto& t : impl_->threads)
    if (t.joinable()) t.join();
  impl_.reset();
}

} // namespace satoru::web
