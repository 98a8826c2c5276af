#include "satoru/web/server.hpp"

#include "satoru/time.hpp"
#include "satoru/web/responses.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
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
#include <charconv>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <type_traits>
#include <vector>

#include <fcntl.h>

namespace satoru::web {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace serving {

/// What a connection counts against (server_limits).
enum class slot { none, unauthenticated, authenticated, stream };

/// The part of a connection the server's bookkeeping sees.
struct connection_base {
  virtual ~connection_base() = default;
  /// Closes the connection from another thread (posted to its strand).
  virtual void evict() = 0;
  slot held = slot::none; ///< guarded by impl::slots_mutex
  std::list<std::weak_ptr<connection_base>>::iterator waiting_at;
};

/// A few threads of their own for requests that run restic (Asio's thread
/// pool), with a bound on what runs and waits: a large tree loading never
/// holds up /healthz or /login, and a flood gets 503 instead of a queue.
class read_pool {
public:
  read_pool(int threads, int queue)
      : pool_(static_cast<std::size_t>(std::max(1, threads)))
      , max_jobs_(static_cast<std::size_t>(std::max(1, threads) + std::max(0, queue))) {}
  ~read_pool() { stop(); }

  /// Queues `job`; false when the pool is full (or stopping).
  bool try_run(std::function<void()> job) {
    if (stopping_ || in_flight_.fetch_add(1) >= max_jobs_) {
      --in_flight_;
      return false;
    }
    asio::post(pool_, [this, job = std::move(job)]() mutable {
      try {
        job();
      } catch (const std::exception& e) {
        spdlog::error("web console: request failed: {}", e.what());
      }
      job = nullptr; // its connection goes before the count does
      --in_flight_;
    });
    return true;
  }

  /// Drops what waits (with the pool), lets what runs end, joins.
  void stop() {
    stopping_ = true;
    pool_.stop();
    pool_.join();
  }

private:
  asio::thread_pool pool_;
  const std::size_t max_jobs_;
  std::atomic<std::size_t> in_flight_{0};
  std::atomic<bool> stopping_{false};
};

} // namespace serving

using serving::connection_base;
using serving::slot;

struct web_server::impl {
  server_limits limits;
  std::shared_ptr<console> routes;
  // Declared before the io_context: connections still in its handlers
  // when it is destroyed leave these (release()).
  std::mutex slots_mutex;
  /// Unauthenticated connections, the one waiting longest first.
  std::list<std::weak_ptr<serving::connection_base>> waiting;
  int authenticated = 0, streams = 0;

  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
  /// Set when the console serves HTTPS.
  std::optional<asio::ssl::context> tls;
  std::vector<std::thread> threads;
  std::unique_ptr<serving::read_pool> readers;

  void accept();
  /// Counts a new connection as unauthenticated; at the cap, the one
  /// waiting longest is closed to make room.
  void admit(const std::shared_ptr<connection_base>& c);
  /// Moves `c` to `wanted`; false (and `c` unchanged) when its cap is full.
  bool move_to(connection_base& c, slot wanted);
  /// Forgets `c` (it closes).
  void release(connection_base& c);

private:
  void release_locked(connection_base& c);
};

void web_server::impl::admit(const std::shared_ptr<connection_base>& c) {
  std::vector<std::shared_ptr<connection_base>> evicted;
  {
    std::lock_guard lock(slots_mutex);
    const auto cap = static_cast<std::size_t>(std::max(1, limits.max_unauthenticated));
    for (auto it = waiting.begin(); it != waiting.end() && waiting.size() >= cap;) {
      // One that is being destroyed leaves by itself (release() waits for us).
      auto oldest = it->lock();
      if (!oldest) {
        ++it;
        continue;
      }
      it = waiting.erase(it);
      oldest->held = slot::none;
      evicted.push_back(std::move(oldest));
    }
    c->waiting_at = waiting.insert(waiting.end(), c);
    c->held = slot::unauthenticated;
  }
  // Outside the lock: the last reference may go here, and its destructor
  // takes the lock.
  for (auto& e : evicted)
    e->evict();
}

bool web_server::impl::move_to(connection_base& c, slot wanted) {
  std::lock_guard lock(slots_mutex);
  if (c.held == wanted) return true;
  if (wanted == slot::authenticated && authenticated >= limits.max_connections)
    return false;
  if (wanted == slot::stream && streams >= limits.max_streams) return false;
  release_locked(c);
  c.held = wanted;
  if (wanted == slot::authenticated) ++authenticated;
  if (wanted == slot::stream) ++streams;
  return true;
}

void web_server::impl::release(connection_base& c) {
  std::lock_guard lock(slots_mutex);
  release_locked(c);
}

void web_server::impl::release_locked(connection_base& c) {
  if (c.held == slot::unauthenticated) waiting.erase(c.waiting_at);
  if (c.held == slot::authenticated) --authenticated;
  if (c.held == slot::stream) --streams;
  c.held = slot::none;
}

namespace {

using tls_stream = beast::ssl_stream<beast::tcp_stream>;

/// One client connection: read a request, answer it, again while kept
/// alive. Stream is a plain TCP stream or a TLS stream over one; a TLS
/// connection shakes hands first and says goodbye last.
template <class Stream>
class connection : public connection_base,
                   public std::enable_shared_from_this<connection<Stream>> {
public:
  template <class... StreamArgs>
  connection(web_server::impl& server, std::string client, StreamArgs&&... stream_args)
      : server_(server)
      , stream_(std::forward<StreamArgs>(stream_args)...)
      , client_(std::move(client)) {}
  ~connection() override {
    if (body_) body_->finish(true);
    server_.release(*this);
  }

  void run() {
    server_.admit(this->shared_from_this());
    asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      if constexpr (is_tls)
        self->handshake();
      else
        self->read(true);
    });
  }

  void evict() override {
    asio::post(stream_.get_executor(),
               [self = this->shared_from_this()] { self->close_socket(); });
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
    if (!reads_repository(parser_->get())) {
      answer();
      return proceed();
    }
    // restic may take minutes over a large tree: the pool runs it, and
    // the answer comes back to this connection's strand.
    bool queued = server_.readers->try_run([self = this->shared_from_this()] {
      self->answer();
      asio::post(self->stream_.get_executor(), [self] { self->proceed(); });
    });
    if (!queued)
      busy("the console is busy reading the repository; try again in a few seconds");
  }

  /// The console's answer to the request just read, into the members.
  void answer() {
    try {
      auto got = server_.routes->respond_to(parser_->get(), client_, now_ms());
      response_ = std::move(got.response);
      events_ = std::move(got.events);
      body_ = std::move(got.body);
      authenticated_ = got.authenticated;
    } catch (const std::exception& e) {
      spdlog::error("web console: request failed: {}", e.what());
      failed_ = true;
    }
  }

  /// Sends the answer, once the connection has the slot it needs.
  void proceed() {
    if (failed_) return reply(http::status::internal_server_error);
    bool streaming = events_ || body_;
    if (authenticated_ &&
        !server_.move_to(*this, streaming ? slot::stream : slot::authenticated)) {
      events_.reset();
      if (body_) body_->finish(true);
      body_.reset();
      return busy("the console serves as many clients as it may; try again later");
    }
    if (streaming) return stream_head();
    write();
  }

  /// Under TLS every response tells browsers to come back over HTTPS only.
  void stamp() {
    if constexpr (is_tls)
      response_.set(http::field::strict_transport_security, "max-age=31536000");
  }

  /// A stream's head, then its events as they come or its body as it is read.
  void stream_head() {
    stamp();
    std::ostringstream head;
    head << response_.base();
    out_ = head.str();
    tcp().expires_after(server_.limits.write_timeout);
    asio::async_write(
        stream_, asio::buffer(out_),
        [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
          if (ec) return self->close_socket();
          if (self->body_) return self->start_body();
          self->pump();
        });
  }

  /// Events are polled twice a second; a comment line every 15 s finds
  /// clients that went away.
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

  void start_body() {
    int fd = ::fcntl(body_->fd(), F_DUPFD_CLOEXEC, 3);
    if (fd < 0) return end_body(true);
    pipe_.emplace(stream_.get_executor(), fd);
    auto length = response_[http::field::content_length];
    left_ = 0;
    std::from_chars(length.data(), length.data() + length.size(), left_);
    chunk_.resize(64 * 1024);
    pump_body();
  }

  /// One chunk from the pipe, written before the next is read: a slow
  /// client holds back the writer (restic blocks on its full pipe), and
  /// memory stays one chunk per download.
  void pump_body() {
    // restic gets as long for each chunk as for any other read: one that
    // stalls is stopped, not left holding a stream slot.
    timer_.expires_after(std::chrono::minutes(2));
    timer_.async_wait(
        [self = this->shared_from_this(), chunk = ++chunks_](beast::error_code ec) {
          // A timer that fired as its read ended must not stop the next one.
          if (!ec && self->pipe_ && self->chunks_ == chunk) self->pipe_->cancel();
        });
    pipe_->async_read_some(
        asio::buffer(chunk_),
        [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
          self->timer_.cancel();
          if (ec == asio::error::operation_aborted)
            spdlog::warn("web console: a download got nothing from restic dump for 2 "
                         "minutes and was stopped");
          if (n == 0 || n > self->left_) return self->end_body(ec != asio::error::eof);
          self->left_ -= n;
          self->tcp().expires_after(self->server_.limits.write_timeout);
          asio::async_write(self->stream_, asio::buffer(self->chunk_.data(), n),
                            [self](beast::error_code ec, std::size_t) {
                              if (ec) return self->end_body(true);
                              self->pump_body();
                            });
        });
  }

  /// The writer's end (`stop`: killed, as the client went away or the
  /// writer stalled). A body cut short, or a failed writer, closes the
  /// connection without more, which the client sees as a broken download.
  void end_body(bool stop) {
    pipe_.reset();
    auto ended = body_->finish(stop);
    body_.reset();
    if (!ended) spdlog::error("web console: download failed: {}", ended.err().message);
    if (stop || !ended || left_ != 0) return close_socket();
    close();
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

  /// 503 to the request just read (JSON when it asked for JSON), which
  /// ends the connection: its client may try again in a few seconds.
  void busy(const std::string& why) {
    response_ = failure(parser_->get(), http::status::service_unavailable, why);
    response_.set(http::field::retry_after, "5");
    response_.keep_alive(false);
    write();
  }

  void write() {
    stamp();
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
  bool authenticated_ = false, failed_ = false;
  std::shared_ptr<job_event_stream> events_; ///< set while streaming events
  std::string out_;                          ///< the stream's bytes in flight
  asio::steady_timer timer_{stream_.get_executor()};
  std::chrono::steady_clock::time_point last_sent_ = std::chrono::steady_clock::now();
  std::shared_ptr<body_source> body_;                  ///< set while sending a download
  std::optional<asio::posix::stream_descriptor> pipe_; ///< its pipe (a dup)
  std::vector<char> chunk_;                            ///< its bytes in flight
  std::uint64_t left_ = 0;                             ///< of its Content-Length
  std::uint64_t chunks_ = 0; ///< reads so far (the stall timer's generation)
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
          if (peer_ec) {
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
  i->readers = std::make_unique<serving::read_pool>(limits.repository_readers,
                                                    limits.repository_queue);
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
  impl_->readers->stop();
  impl_.reset();
}

} // namespace satoru::web
