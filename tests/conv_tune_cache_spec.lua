-- The conv autotuner's on-disk cache (src/conv_tune.c; docs/design.md,
-- "Convolution lowering and autotuning"): K.set_conv_autotune(true, {cache =
-- path}) or LKERAS_CONV_TUNE_CACHE. A second process takes every choice from
-- the file without timing anything; lines that are corrupt, hostile or name
-- a lowering the geometry cannot run are ignored (that geometry is timed
-- again) and dropped when the file is rewritten.
local keras = require "keras"
local K = keras.backend

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  return out, ok
end

local DIR = (function()
  local p = io.popen("mktemp -d /tmp/lkeras-tunecache-XXXXXX")
  local d = p:read("l")
  p:close()
  return d
end)()
teardown(function() os.execute("rm -rf '" .. DIR .. "'") end)

local function write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- a child process: a Conv2D and a Conv3D model trained one step; prints the
-- tuner's entries ("E pass/kernel candidate cached timed candidates") and its total time
local CHILD = DIR .. "/child.lua"
write(CHILD, [[
local keras = require "keras"
local K, L = keras.backend, keras.layers
local path = os.getenv("CACHE_PATH")
if path then K.set_conv_autotune(true, {cache = path}) end
keras.random.seed(3)
local m2 = keras.Sequential{L.Conv2D{16, 3, activation = "relu", input_shape = {10, 10, 2}}, L.Flatten(), L.Dense{1}}
m2:compile{loss = "mse", optimizer = "sgd"}
m2:fit(keras.random.random{4, 10, 10, 2}, keras.random.random{4, 1}, {epochs = 1, verbose = 0})
local m3 = keras.Sequential{L.Conv3D{16, 3, activation = "relu", input_shape = {6, 6, 6, 2}}, L.Conv3D{8, 2},
  L.Flatten(), L.Dense{1}}
m3:compile{loss = "mse", optimizer = "sgd"}
m3:fit(keras.random.random{4, 6, 6, 6, 2}, keras.random.random{4, 1}, {epochs = 1, verbose = 0})
local r = K.conv_autotune_report()
for _, e in ipairs(r.entries) do
  local timed, n = false, 0
  for _, ms in pairs(e.times) do
    n = n + 1
    if ms then timed = true end
  end
  print(string.format("E %s/%s %s %s %s %d", e.pass, table.concat(e.kernel, "x"), e.candidate, tostring(e.cached),
    tostring(timed), n))
end
print("TOTAL " .. r.total_s)
]])

-- runs the child with the environment `env`; returns {key = {candidate, cached, timed, candidates}}, the total,
-- the output and the entry count. (A pass with one candidate is neither timed nor cached.)
local function child(env)
  local out, ok = sh(env .. " build/lkeras " .. CHILD)
  assert(ok, out)
  local entries, n = {}, 0
  for key, cand, cached, timed, nc in out:gmatch("E (%S+) (%S+) (%S+) (%S+) (%d+)") do
    entries[key] = {cand, cached == "true", timed == "true", tonumber(nc)}
    n = n + 1
  end
  return entries, tonumber(out:match("TOTAL (%S+)")), out, n
end

describe("the conv autotuner's on-disk cache", function()
  it("is written by one process and read by the next: no timing, the same choices", function()
    local path = DIR .. "/tune.txt"
    local first, total1, out, n = child("CACHE_PATH=" .. path)
    assert.is_true(n >= 7, out)   -- conv2d: 2 passes (no input gradient); conv3d: 2 layers
    assert.is_true(total1 > 0)
    local multi = 0
    for k, e in pairs(first) do
      assert.is_false(e[2], k)
      assert.equal(e[4] > 1, e[3], k)
      if e[4] > 1 then multi = multi + 1 end
    end
    assert.is_true(multi >= 4, out)
    local text = read(path)
    assert.truthy(text:find("^# lkeras conv autotuner cache 1\n"))
    local lines = 0
    for _ in text:gmatch("\n[^#][^\n]*\t%d+\t[%w_]+ [-%d ]+\t%a[%w]*\n?") do lines = lines + 1 end
    assert.is_true(lines >= 1)
    local second, total2, out2 = child("CACHE_PATH=" .. path)
    assert.is_true(total2 < 1e-3, out2)   -- bookkeeping only: nothing timed
    for k, e in pairs(first) do
      assert.is_table(second[k], k)
      assert.equal(e[1], second[k][1], k)          -- the same choice
      assert.equal(e[4] > 1, second[k][2], k)      -- from the file
      assert.is_false(second[k][3], k)             -- nothing timed
    end
    -- LKERAS_CONV_TUNE_CACHE: the same file when no cache option is given
    local third, total3 = child("LKERAS_CONV_TUNE_CACHE=" .. path)
    assert.is_true(total3 < 1e-3)
    for k, e in pairs(first) do assert.equal(e[4] > 1, third[k][2], k) end
  end)

  it("ignores corrupt and hostile lines, times those geometries again and rewrites the file clean", function()
    local path = DIR .. "/good.txt"
    local first = child("CACHE_PATH=" .. path)
    local text = read(path)
    local kept = {}
    for line in text:gmatch("[^\n]+") do
      if not line:find("^#") then kept[#kept + 1] = line end
    end
    assert.is_true(#kept >= 4)
    -- one geometry's line names a lowering it cannot run (winograd for a 3-D conv), one a lowering that does
    -- not exist, one has a key too short; binary garbage and an overlong line beside them
    local bad, winograd = {}, false
    for i, line in ipairs(kept) do
      local cpu, th, key, algo = line:match("^([^\t]+)\t(%d+)\t([^\t]+)\t(%S+)$")
      assert.truthy(cpu, line)
      if i == 1 then
        bad[#bad + 1] = table.concat({cpu, th, key, "bogus"}, "\t")
      elseif i == 2 then
        bad[#bad + 1] = table.concat({cpu, th, (key:gsub(" %-?%d+$", "")), algo}, "\t")
      elseif key:match("^conv3d ") and not winograd then   -- a lowering a 3-D convolution does not have
        bad[#bad + 1], winograd = table.concat({cpu, th, key, "winograd"}, "\t"), true
      else
        bad[#bad + 1] = line
      end
      if i == 3 then   -- another op's name in the key
        bad[#bad + 1] = table.concat({cpu, th, (key:gsub("^%S+", "matmul")), algo}, "\t")
      end
    end
    assert.is_true(winograd)
    bad[#bad + 1] = string.rep("x", 5000)
    bad[#bad + 1] = "\0\1\2\255\t\t\t\n\t7\t1 2 3\twinograd"
    write(path, "# lkeras conv autotuner cache 1\n" .. table.concat(bad, "\n") .. "\n")
    local again, total, out = child("CACHE_PATH=" .. path)
    assert.is_true(total > 0, out)
    local retimed = 0
    for k, e in pairs(again) do
      if not e[2] and e[4] > 1 then
        retimed = retimed + 1
        assert.is_true(e[3], k)
      end
      assert.truthy(first[k], k)
    end
    assert.is_true(retimed >= 3, out)
    -- rewritten: the well-formed lines only, and a fourth process takes all from it
    local clean = read(path)
    assert.falsy(clean:find("bogus", 1, true))
    assert.falsy(clean:find("xxxxx", 1, true))
    assert.falsy(clean:find("\0", 1, true))
    local last, total4 = child("CACHE_PATH=" .. path)
    assert.is_true(total4 < 1e-3)
    for k, e in pairs(first) do assert.equal(e[4] > 1, last[k][2], k) end
  end)

  it("never trusts a file that is too large, a directory or a device", function()
    local big = DIR .. "/big.txt"
    write(big, string.rep("# padding padding padding padding padding padding padding padding\n", 20000))
    local e, total = child("CACHE_PATH=" .. big)
    assert.is_true(total > 0)
    for k, v in pairs(e) do assert.is_false(v[2], k) end
    local _, total2, out = child("CACHE_PATH=" .. DIR)   -- a directory: nothing read, nothing written
    assert.is_true(total2 > 0, out)
    local _, total3, out3 = child("CACHE_PATH=/dev/null")
    assert.is_true(total3 > 0, out3)
  end)

  it("takes a path or false, and refuses anything else by name", function()
    assert.error_matches(function() K.set_conv_autotune(true, {cache = 5}) end,
      "K.set_conv_autotune: cache must be a file path or false, got number", 1, true)
    assert.error_matches(function() K.set_conv_autotune(true, {cache = ""}) end,
      "K.set_conv_autotune: cache must be a file path or false, got ''", 1, true)
    assert.error_matches(function() K.set_conv_autotune(true, {cash = "x"}) end,
      "K.set_conv_autotune: unknown option 'cash' (expected: cache)", 1, true)
    assert.error_matches(function() K.set_conv_autotune(true, {cache = string.rep("a", 2000)}) end,
      "the cache path is longer than 1023 bytes", 1, true)
    K.set_conv_autotune(true, {cache = DIR .. "/x.txt"})
    assert.equal(DIR .. "/x.txt", K.get_conv_tune_cache())
    K.set_conv_autotune(true, {cache = false})
    assert.is_false(K.get_conv_tune_cache())
  end)
end)
