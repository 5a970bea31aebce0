#include "http_serve.h"

#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace ledger_tools {
namespace {

sigset_t StopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

}  // namespace

void BlockStopSignals() {
  sigset_t stop_signals = StopSignals();
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

void ApplyHttpSettings(httplib::Server& server, const HttpSettings& settings) {
  size_t threads = settings.threads;
  server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server.set_tcp_nodelay(true);
  server.set_keep_alive_max_count(100000);
  server.set_keep_alive_timeout(settings.keep_alive_seconds);
  server.set_read_timeout(10, 0);
  server.set_write_timeout(10, 0);
  server.set_payload_max_length(settings.max_body);
}

int BindPort(httplib::Server& server, const std::string& host, int port, std::string* error) {
  if (port == 0) {
    int bound = server.bind_to_any_port(host);
    if (bound < 0 && error) *error = "cannot listen on " + host;
    return bound < 0 ? -1 : bound;
  }
  if (!server.bind_to_port(host, port)) {
    int err = errno;
    if (error) *error = "cannot listen on " + host + ":" + std::to_string(port) + ": " + std::strerror(err);
    return -1;
  }
  return port;
}

bool ServeUntilStopSignal(httplib::Server& server, const std::function<void(int)>& on_signal) {
  sigset_t stop_signals = StopSignals();
  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    if (on_signal) on_signal(sig);
    server.stop();
  });
  bool ok = server.listen_after_bind();
  // Serving may end without a signal: wake the waiting thread with one (it
  // is blocked everywhere, so only its sigwait takes it) to join it.
  if (signal_thread.joinable()) {
    pthread_kill(signal_thread.native_handle(), SIGTERM);
    signal_thread.join();
  }
  return ok;
}

}  // namespace ledger_tools
