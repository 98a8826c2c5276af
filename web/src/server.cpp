#include "satoru/web/server.hpp"

#include "satoru/time.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <optional>
#include <sstream>
#include <thread>
#include <type_traits>
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
  /// Set when the console serves HTTPS.
  std::optional<asio::ssl::context> tls;
  std::vector<std::thread> threads;

  void accept();
};

namespace {

using tls_stream = beast::ssl_stream<beast::tcp_stream>;

/// One client connection: read a request, answer it, again while kept
/// alive. Stream is a plain TCP stream or a TLS stream over one; a TLS
/// connection shakes hands first and says goodbye last.
template <class Stream>
class connection : public std::enable_shared_from_this<connection<Stream>> {
public:
  template <class... StreamArgs>
  connection(web_server::impl& server, std::string client, StreamArgs&&... stream_args)
      : server_(server)
      , stream_(std::forward<StreamArgs>(stream_args)...)
      , client_(std::move(client)) {
    ++server_.connections;
  }
  ~connection() { --server_.connections; }

  void run() {
    asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      if constexpr (is_tls)
        self->handshake();
      else
        self->read(true);
    });
  }

private:
  static constexpr bool is_tls = std::is_same_v<Stream, tls_stream>;

  beast::tcp_stream& tcp() { return beast::get_lowest_layer(stream_); }

  /// The handshake counts against the first request's time: a client that
  /// stalls in it is a slow loris too.
  void handshake() {
    tcp().expires_after(server_.limits.read_timeout);
    stream_.async_handshake(asio::ssl::stream_base::server,
                            [self = this->shared_from_this()](beast::error_code ec) {
                              if (ec) return self->close_socket();
                              self->read(true);
                            });
  }

  void read(bool first) {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_.limits.header_limit));
    parser_->body_limit(server_.limits.body_limit);
    // A slow client gets this long for its whole request (slow loris);
    // the first request of a connection is due at once, later ones after idling.
    tcp().expires_after(first ? server_.limits.read_timeout
                              : server_.limits.idle_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](
                         beast::error_code ec, std::size_t) { self->on_read(ec); });
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
      auto answer = server_.routes->respond_to(parser_->get(), client_, now_ms());
      response_ = std::move(answer.response);
      events_ = std::move(answer.events);
    } catch (const std::exception& e) {
      spdlog::error("web console: request failed: {}", e.what());
      reply(http::status::internal_server_error);
      return;
    }
    if (events_) return stream_head();
    write();
  }

  /// A stream's head, then its events as they come (polled twice a
  /// second); a comment line every 15 s finds clients that went away.
  void stream_head() {
    std::ostringstream head;
    head << response_.base();
    out_ = head.str();
    tcp().expires_after(server_.limits.write_timeout);
    asio::async_write(
        stream_, asio::buffer(out_),
        [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
          if (ec) return self->close_socket();
          self->pump();
        });
  }

  void pump() {
    auto chunk = events_->poll();
    if (!chunk) {
      spdlog::warn("web console: event stream ended: {}", chunk.err().message);
      return close();
    }
    out_ = std::move(chunk->text);
    bool done = chunk->done;
    auto now = std::chrono::steady_clock::now();
    if (out_.empty() && now - last_sent_ >= std::chrono::seconds(15))
      out_ = ": keep-alive\n\n";
    if (out_.empty()) return wait();
    last_sent_ = now;
    tcp().expires_after(server_.limits.write_timeout);
    asio::async_write(
        stream_, asio::buffer(out_),
        [self = this->shared_from_this(), done](beast::error_code ec, std::size_t) {
          if (ec) return self->close_socket();
          if (done) return self->close();
          self->wait();
        });
  }

  void wait() {
    tcp().expires_never();
    timer_.expires_after(std::chrono::milliseconds(500));
    timer_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
      if (!ec) self->pump();
    });
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
    tcp().expires_after(server_.limits.write_timeout);
    http::async_write(
        stream_, response_,
        [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
          if (ec || !self->response_.keep_alive()) return self->close();
          self->read(false);
        });
  }

  void close() {
    if constexpr (is_tls) {
      tcp().expires_after(std::chrono::seconds(5));
      stream_.async_shutdown(
          [self = this->shared_from_this()](beast::error_code) { self->close_socket(); });
    } else {
      close_socket();
    }
  }

  void close_socket() {
    beast::error_code ignored;
    tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
    tcp().socket().close(ignored);
  }

  web_server::impl& server_;
  Stream stream_;
  std::string client_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http_response response_;
  std::shared_ptr<job_event_stream> events_; ///< set while streaming
  std::string out_;                          ///< the stream's bytes in flight
  asio::steady_timer timer_{stream_.get_executor()};
  std::chrono::steady_clock::time_point last_sent_ = std::chrono::steady_clock::now();
};

/// The TLS context of the console: TLS 1.2 or newer, the certificate chain
/// and key from PEM files (config.cpp checked the key's mode).
expected<void> load_tls(std::optional<asio::ssl::context>& tls, const tls_files& files) {
  tls.emplace(asio::ssl::context::tls_server);
  beast::error_code ec;
  tls->set_options(asio::ssl::context::default_workarounds |
                       asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 |
                       asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1 |
                       asio::ssl::context::single_dh_use,
                   ec);
  if (!ec) tls->use_certificate_chain_file(files.certificate, ec);
  if (ec)
    return error{errc::invalid_argument,
                 "web_tls_certificate " + files.certificate + ": " + ec.message()};
  tls->use_private_key_file(files.key, asio::ssl::context::pem, ec);
  if (ec)
    return error{errc::invalid_argument,
                 "web_tls_key " + files.key + ": " + ec.message()};
  return {};
}

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
  acceptor.async_accept(
      asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
        if (ec == asio::error::operation_aborted) return;
        if (!ec) {
          beast::error_code peer_ec;
          auto peer = socket.remote_endpoint(peer_ec);
          if (peer_ec || connections.load() >= limits.max_connections) {
            beast::error_code ignored;
            socket.close(ignored);
          } else {
            auto client = peer.address().to_string();
            if (tls)
              std::make_shared<connection<tls_stream>>(*this, std::move(client),
                                                       std::move(socket), *tls)
                  ->run();
            else
              std::make_shared<connection<beast::tcp_stream>>(*this, std::move(client),
                                                              std::move(socket))
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
                                                        server_limits limits,
                                                        const tls_files& tls) {
  auto fail = [&](const std::string& why) {
    return error{errc::io, "cannot serve the web console on " + listen + ": " + why};
  };
  std::string host, port;
  if (!split_listen(listen, host, port)) return fail("not host:port");
  auto i = std::make_unique<impl>();
  i->limits = limits;
  i->routes = std::move(routes);
  if (!tls.certificate.empty())
    if (auto loaded = load_tls(i->tls, tls); !loaded) return fail(loaded.err().message);
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
