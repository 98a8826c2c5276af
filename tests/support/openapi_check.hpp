#pragma once

#include <boost/json/value.hpp>

#include <string>
#include <vector>

namespace satoru::testing {

/// docs/openapi.json, parsed.
boost::json::value openapi_document();

/// The schema of the JSON answer to `method` (lower case) of `path` (as
/// the document spells it, e.g. "/api/v1/jobs/{id}") with `status`; a
/// test failure and null when the document does not describe it.
boost::json::value response_schema(const boost::json::value& document,
                                   const std::string& path, const std::string& method,
                                   int status);

/// Where `value` breaks `schema`, one "JSON pointer: what" per problem.
/// Checks the JSON Schema subset docs/openapi.json uses ($ref into the
/// document, type (one or a list), enum, properties, required,
/// additionalProperties false, items, oneOf); any other keyword but the
/// descriptive ones is itself a problem, so the file cannot promise more
/// than is checked.
std::vector<std::string> schema_problems(const boost::json::value& value,
                                         const boost::json::value& schema,
                                         const boost::json::value& document,
                                         const std::string& pointer = "");

} // namespace satoru::testing
