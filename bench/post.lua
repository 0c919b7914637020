-- wrk: POST valid account JWTs, each a new account (durable writes), cycling when exhausted.
-- LINES_FILE holds "pubkey jwt" lines.
local items = {}
for line in io.lines(os.getenv("LINES_FILE")) do
  local key, jwt = line:match("^(%S+) (%S+)$")
  items[#items + 1] = { key, jwt }
end
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/jwt"
request = function()
  i = i % #items + 1
  return wrk.format("POST", "/jwt/v1/accounts/" .. items[i][1], nil, items[i][2])
end
