#include "satoru/actors/store_event_sink.hpp"

#include <boost/json/serialize.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

namespace satoru::actors {

void store_event_sink::emit(const std::string& level, const std::string& step,
                            const std::string& target, const std::string& message,
                            const boost::json::object& data) {
  spdlog::debug("job {} {} {} {} {}", job_id_, level, step, target, message);
  caf::anon_send(store_, event_atom::value,
                 job_event{job_id_, epoch_, level, step, target, message,
                           data.empty() ? std::string{} : boost::json::serialize(data)});
}

} // namespace satoru::actors
