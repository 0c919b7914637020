-- wrk: GET a random account per request. KEYS_FILE holds one public key per line.
local keys = {}
for line in io.lines(os.getenv("KEYS_FILE")) do keys[#keys + 1] = line end
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/jwt/v1/accounts/" .. keys[math.random(#keys)])
end
