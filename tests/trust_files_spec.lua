-- Hostile files and special paths (issue 17, the file findings): memory
-- bounded by what a file holds (.lkm, .h5), the HDF5 sandbox (external
-- storage and links), loaders that never block on a FIFO, saves that refuse
-- what is not a regular file and keep links, modes and folders tidy,
-- overflow-checked shapes, strict counts and UTF-8, a Ctrl-C after a save.
-- Every hostile file is made here; memory cases run in a child process
-- under `ulimit -v`, and anything that could hang runs under `timeout`.
local keras = require "keras"
local L = keras.layers
local core = keras._core

local function tmpdir()
  local p = io.popen("mktemp -d /tmp/lkeras-trust-XXXXXX")
  local d = p:read("l")
  p:close()
  return d
end

local DIR = tmpdir()
local function P(name) return DIR .. "/" .. name end
teardown(function() os.execute("rm -rf '" .. DIR .. "'") end)

local function read_all(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function write_all(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function sh(cmd) return os.execute(cmd) end

-- Runs Lua code in a child lua5.4 (with build/keras.so) under a virtual
-- memory limit (KiB) and a time limit; returns its exit status and output.
local function child(code, vmem_kb, seconds)
  local file = P(string.format("child%d.lua", math.random(1, 1 << 30)))
  write_all(file, "package.cpath = 'build/?.so;' .. package.cpath\nlocal keras = require 'keras'\n" .. code)
  local cmd = string.format("sh -c 'ulimit -v %d; exec timeout -s KILL %d lua5.4 %s' > %s.out 2>&1", vmem_kb or
    8000000, seconds or 60, file, file)
  local _, _, rc = os.execute(cmd)
  return rc, read_all(file .. ".out")
end

local HAVE_H5PY = os.execute("/usr/bin/python3 -c 'import h5py, numpy' 2>/dev/null")
local function py(code)
  local file = P("fix.py")
  write_all(file, code)
  local ok = os.execute("/usr/bin/python3 " .. file .. " > " .. P("py.log") .. " 2>&1")
  assert(ok, "python fixture failed: " .. read_all(P("py.log")))
end

-- a small Dense model: 8 inputs, 2 units
local function small_model()
  local m = keras.Sequential{L.Dense(2, {input_shape = {8}})}
  m:compile{optimizer = "sgd", loss = "mse"}
  return m
end

-- the .lkm at src with its JSON text changed by edit(text) written to dst
local function edit_lkm(src, dst, edit)
  local text, tensors, names = core.lkm_load(src)
  local list = {}
  for i, n in ipairs(names) do list[i] = tensors[n] end
  core.lkm_save(dst, edit(text), names, list)
end

describe("memory bounded by the file (finding 1)", function()
  it("a small .lkm whose config declares Dense(2^28) fails fast, before allocating", function()
    small_model():save(P("small.lkm"))
    edit_lkm(P("small.lkm"), P("huge.lkm"), function(t)
      local s, n = t:gsub('"units":2', '"units":268435456')
      assert.equal(1, n)
      return s
    end)
    assert.is_true(#read_all(P("huge.lkm")) < 4096)
    -- 2 GB of address space: the 8 GB kernel must never be asked for
    local rc, out = child(string.format([[
      local t0 = os.clock()
      local ok, err = pcall(keras.models.load_model, %q)
      print(ok, err)
      print("seconds", os.clock() - t0)
    ]], P("huge.lkm")), 2000000, 60)
    assert.equal(0, rc, out)
    assert.matches("^false\tload_model: Dense: the weight 'dense_%d+/kernel' of shape %(8, 268435456%) "
      .. "needs 8589934592 bytes, more than the 72 bytes of weights left", out)
    assert.truthy(out:find("does not match the weights the file holds", 1, true), out)
    assert.is_true(tonumber(out:match("seconds\t(%S+)")) < 5, out)
  end)

  it("the same model's real file still loads (the budget is exactly its weights)", function()
    local m = small_model()
    m:save(P("ok.lkm"))
    local m2 = keras.models.load_model(P("ok.lkm"))
    local x = keras.tensor.ones{3, 8}
    assert.equal(0, (m:predict(x) - m2:predict(x)):abs():max())
  end)

  it("an .h5 dataset declaring more than it stores (an unwritten or bomb dataset) is refused under ulimit -v",
    function()
      if not HAVE_H5PY then pending("python3-h5py is not installed") return end
      small_model():save(P("small.h5"))
      local function inflate(units, file)
        small_model():save(P(file))
        py(string.format([[
import h5py
f = h5py.File(%q, "r+")
cfg = f.attrs["model_config"]
cfg = cfg.decode() if isinstance(cfg, bytes) else cfg
f.attrs["model_config"] = cfg.replace('"units": 2', '"units": %d').encode()
g = f["model_weights"]
for lname in g:
    for w in list(g[lname][lname]):
        shape = (8, %d) if w.startswith("kernel") else (%d,)
        del g[lname][lname][w]
        g[lname][lname].create_dataset(w, shape=shape, dtype="<f4", chunks=True, compression="gzip")
f.close()
]], P(file), units, units, units))
        assert.is_true(#read_all(P(file)) < 1 << 20)
      end
      -- 8 GB declared, 2 GB of address space: refused by the budget, before any allocation
      inflate(1 << 28, "bomb8g.h5")
      local rc, out = child(string.format([[
        local ok, err = pcall(keras.models.load_model, %q)
        print(ok, err)
      ]], P("bomb8g.h5")), 2000000, 60)
      assert.equal(0, rc, out)
      assert.matches("^false\tload_model: load: '[^']+bomb8g.h5': the dataset '[^']+kernel:0' needs 8589934592 bytes, "
        .. "more than the memory budget %(%d+ bytes%)", out)
      -- 128 MB declared (within the budget), a few bytes stored: more than deflate can give
      inflate(1 << 22, "bomb128m.h5")
      local ok, err = pcall(keras.models.load_model, P("bomb128m.h5"))
      assert.is_false(ok)
      assert.matches("load_model: '[^']+bomb128m.h5' %(HDF5%): the dataset '[^']+kernel:0' declares 134217728 "
        .. "bytes but stores %d+ compressed %(more than deflate can inflate%): refused", err)
    end)

  it("a compressed .h5 within deflate's ratio loads as before", function()
    if not HAVE_H5PY then pending("python3-h5py is not installed") return end
    local m = keras.Sequential{L.Dense(300, {input_shape = {200}})}
    m:set_weights{keras.tensor.zeros{200, 300}, keras.tensor.zeros{300}}
    m:save(P("zeros.h5"))
    py(string.format([[
import h5py, numpy as np
f = h5py.File(%q, "r+")
g = f["model_weights"]
for lname in g:
    for w in list(g[lname][lname]):
        d = g[lname][lname][w]
        data = d[()]
        del g[lname][lname][w]
        g[lname][lname].create_dataset(w, data=data, compression="gzip", compression_opts=9)
f.close()
]], P("zeros.h5")))
    local m2 = keras.models.load_model(P("zeros.h5"))
    assert.equal(0, m2:get_weights()[1]:abs():max())
  end)
end)

describe("the HDF5 sandbox (finding 3)", function()
  it("refuses a kernel kept in external raw storage (another file's bytes)", function()
    if not HAVE_H5PY then pending("python3-h5py is not installed") return end
    write_all(P("secret.bin"), string.rep("SECRET!!", 8))
    small_model():save(P("ext.h5"))
    py(string.format([[
import h5py
f = h5py.File(%q, "r+")
g = f["model_weights"]
for lname in g:
    sub = g[lname][lname]
    for w in list(sub):
        if w.startswith("kernel"):
            del sub[w]
            sub.create_dataset(w, shape=(8, 2), dtype="<f4", external=[(%q, 0, 64)])
f.close()
]], P("ext.h5"), P("secret.bin")))
    local ok, err = pcall(keras.models.load_model, P("ext.h5"))
    assert.is_false(ok)
    assert.matches("keeps its values in external files: refused", err)
  end)

  it("refuses an external link", function()
    if not HAVE_H5PY then pending("python3-h5py is not installed") return end
    small_model():save(P("other.h5"))
    small_model():save(P("elink.h5"))
    py(string.format([[
import h5py
f = h5py.File(%q, "r+")
g = f["model_weights"]
for lname in list(g):
    del g[lname]
    g[lname] = h5py.ExternalLink(%q, "/model_weights/" + lname)
f.close()
]], P("elink.h5"), P("other.h5")))
    local ok, err = pcall(keras.models.load_model, P("elink.h5"))
    assert.is_false(ok)
    assert.matches("is an external link: refused", err)
  end)

  it("no loader blocks on a FIFO, a device or a folder", function()
    assert.is_true(sh("mkfifo " .. P("fifo.lkm") .. " " .. P("fifo.h5") .. " " .. P("fifo")))
    -- a child under a time limit: a loader that blocks is killed and fails the test
    local rc, out = child(string.format([[
      local core = keras._core
      local calls = {
        lkm = function(p) return keras.models.load_model(p .. ".lkm") end,
        h5 = function(p) return keras.models.load_model(p .. ".h5") end,
        h5_open = function(p) return core.h5_open(p) end,
        lkm_load = function(p) return core.lkm_load(p) end,
        npy = function(p) return keras.tensor.load(p) end,
        npz = function(p) return keras.tensor.load_npz(p) end,
        csv = function(p) return keras.tensor.from_csv(p) end,
        idx = function(p) return core.load_idx(p) end,
        image = function(p) return keras.preprocessing.image.load_img(p) end,
        glove = function(p) return keras.utils.load_word_vectors(p) end,
        weights = function(p) local m = keras.Sequential{keras.layers.Dense(1, {input_shape = {1}})}
                              return m:load_weights(p .. ".h5") end,
      }
      local names = {}
      for k in pairs(calls) do names[#names + 1] = k end
      table.sort(names)
      for _, k in ipairs(names) do
        local ok, err = pcall(calls[k], %q)
        print(k, ok, tostring(err):gsub("\n", " "))
        ok, err = pcall(calls[k], "/dev/zero")
        if k ~= "lkm" and k ~= "h5" and k ~= "weights" then print(k .. "_dev", ok, tostring(err):gsub("\n", " ")) end
      end
    ]], P("fifo")), 8000000, 30)
    assert.equal(0, rc, out)
    local n = 0
    for line in out:gmatch("[^\n]+") do
      n = n + 1
      assert.matches("^%S+\tfalse\t.*not a regular file", line)
    end
    assert.equal(19, n, out)
  end)
end)

describe("saves (finding 4)", function()
  local function mode(path)
    local p = io.popen("stat -c %a '" .. path .. "'")
    local s = p:read("l")
    p:close()
    return s
  end
  local function is_link(path) return sh("test -L '" .. path .. "'") end

  for _, ext in ipairs{".lkm", ".h5"} do
    it("writes through a symbolic link (the link stays a link) " .. ext, function()
      local target = P("real" .. ext)
      write_all(target, "old")
      assert.is_true(sh("ln -s real" .. ext .. " " .. P("link" .. ext)))
      local m = small_model()
      m:save(P("link" .. ext))
      assert.is_true(is_link(P("link" .. ext)))
      local m2 = keras.models.load_model(target)
      local x = keras.tensor.ones{2, 8}
      assert.equal(0, (m:predict(x) - m2:predict(x)):abs():max())
      -- a dangling link: the file it names is made
      assert.is_true(sh("ln -s made" .. ext .. " " .. P("dangling" .. ext)))
      m:save(P("dangling" .. ext))
      assert.is_true(is_link(P("dangling" .. ext)))
      keras.models.load_model(P("made" .. ext))
    end)

    it("keeps the mode of the file it replaces " .. ext, function()
      local path = P("private" .. ext)
      write_all(path, "old")
      assert.is_true(sh("chmod 600 '" .. path .. "'"))
      small_model():save(path)
      assert.equal("600", mode(path))
      assert.is_true(sh("chmod 640 '" .. path .. "'"))
      small_model():save_weights(path)
      assert.equal("640", mode(path))
    end)
  end

  it("refuses a FIFO or a folder at the path, leaving it as it was", function()
    assert.is_true(sh("mkfifo " .. P("target.lkm")))
    local ok, err = pcall(small_model().save, small_model(), P("target.lkm"))
    assert.is_false(ok)
    assert.matches("save: '[^']+target.lkm': cannot replace it: a FIFO is there, not a regular file %(refused%)", err)
    assert.is_true(sh("test -p " .. P("target.lkm")))
    assert.is_true(sh("mkdir " .. P("folder.h5")))
    ok, err = pcall(small_model().save_weights, small_model(), P("folder.h5"))
    assert.is_false(ok)
    assert.matches("cannot replace it: a directory is there", err)
    assert.is_true(sh("test -d " .. P("folder.h5")))
    local t = keras.tensor.ones{2}
    ok, err = pcall(t.save, t, P("target.lkm"))
    assert.is_false(ok)
    assert.matches("a FIFO is there", err)
    assert.is_true(sh("test -p " .. P("target.lkm")))
    -- (a FIFO as a symbolic link's target: the same)
    assert.is_true(sh("ln -s target.lkm " .. P("to_fifo.lkm")))
    ok, err = pcall(small_model().save, small_model(), P("to_fifo.lkm"))
    assert.is_false(ok)
    assert.matches("a FIFO is there", err)
  end)

  it("removes temporary files of killed saves, and only those", function()
    local path = P("tidy.lkm")
    -- a process that has ended: its pid is free
    local p = io.popen("sh -c 'echo $$'")
    local dead = p:read("l")
    p:close()
    local stale = path .. ".tmp" .. dead .. ".0"
    local live = path .. ".tmp1.3"                            -- pid 1 runs
    local other = P("tidy2.lkm.tmp" .. dead .. ".0")          -- another target's
    local odd = path .. ".tmp" .. dead .. ".x"                -- not our pattern
    for _, f in ipairs{stale, live, other, odd} do write_all(f, "partial") end
    small_model():save(path)
    assert.is_nil(io.open(stale, "rb"))
    for _, f in ipairs{live, other, odd} do assert.truthy(io.open(f, "rb"), f) end
  end)
end)

describe("shape arithmetic (finding 6)", function()
  it("Reshape{{4, 2^62 + 1}} is refused", function()
    local ok, err = pcall(L.Reshape, {4, (1 << 62) + 1})
    assert.is_false(ok)
    assert.matches("Reshape: target_shape %(4, 4611686018427387905%) has more than 2%^56 elements", err)
  end)

  it("an .npy of shape (0, 2^63-1, 2^63-1) is refused", function()
    local dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 9223372036854775807, 9223372036854775807), }"
    local pad = 64 - (10 + #dict + 1) % 64
    local hdr = dict .. string.rep(" ", pad) .. "\n"
    write_all(P("huge.npy"), "\x93NUMPY\1\0" .. string.pack("<I2", #hdr) .. hdr)
    local ok, err = pcall(keras.tensor.load, P("huge.npy"))
    assert.is_false(ok)
    assert.matches("shape %(0, 9223372036854775807, 9223372036854775807%) is too large", err)
  end)
end)

describe("strict loaders (finding 10)", function()
  it("GloVe: a first line '1 2' is a word unless its counts describe the file", function()
    write_all(P("g1.txt"), "1 2\nthe 0.5\n")
    local v, dim = keras.utils.load_word_vectors(P("g1.txt"))
    assert.equal(1, dim)
    assert.equal(2, v["1"]:get(1))
    assert.equal(0.5, v.the:get(1))
    write_all(P("g2.txt"), "1 2\n")
    v, dim = keras.utils.load_word_vectors(P("g2.txt"))
    assert.equal(1, dim)
    assert.equal(2, v["1"]:get(1))
    -- a real word2vec header: 2 words of 3 values
    write_all(P("g3.txt"), "2 3\na 1 2 3\nb 4 5 6\n")
    v, dim = keras.utils.load_word_vectors(P("g3.txt"))
    assert.equal(3, dim)
    assert.is_nil(v["2"])
    assert.equal(6, v.b:get(3))
    -- counts that do not match, with vectors of 3: not a header, and not a word of 3
    write_all(P("g4.txt"), "5 3\na 1 2 3\n")
    local ok, err = pcall(keras.utils.load_word_vectors, P("g4.txt"))
    assert.is_false(ok)
    assert.matches("g4.txt:1: 1 values, expected 3", err)
  end)

  local function sgd_file()
    local m = small_model()
    m:fit(keras.tensor.ones{4, 8}, keras.tensor.ones{4, 2}, {epochs = 1, verbose = 0})
    m:save(P("sgd.lkm"))
    return read_all(P("sgd.lkm"))
  end

  for _, bad in ipairs{"-9223372036854775808", "1.5", "-2", "1e300"} do
    it(".lkm: an iteration count of " .. bad .. " is refused", function()
      sgd_file()
      edit_lkm(P("sgd.lkm"), P("iters.lkm"), function(t)
        local s, n = t:gsub('(SGD/iterations:0":)%d+', "%1" .. bad)
        assert.equal(1, n, t)
        return s
      end)
      local ok, err = pcall(keras.models.load_model, P("iters.lkm"))
      assert.is_false(ok)
      assert.matches("the optimizer's iteration count must be a non%-negative integer", err)
    end)
  end

  it(".lkm: invalid UTF-8 in the JSON text is refused", function()
    sgd_file()
    edit_lkm(P("sgd.lkm"), P("utf8.lkm"), function(t)
      local s, n = t:gsub('"name":"dense_(%d+)"', '"name":"dense_\xff%1"', 1)
      assert.equal(1, n)
      return s
    end)
    local ok, err = pcall(keras.models.load_model, P("utf8.lkm"))
    assert.is_false(ok)
    assert.matches("the JSON text is not valid UTF%-8", err)
  end)

  it("a Ctrl-C landing just after a save completed is not 'save: interrupted!'", function()
    -- the host's Ctrl-C: a hook that raises "interrupted!" at the next Lua
    -- instruction, armed here the moment the save's commit returns
    for _, ext in ipairs{".lkm", ".h5"} do
      local m = small_model()
      -- (the C function that returns is the commit's: core.lkm_save, h5's commit)
      local function arm()
        local info, caller = debug.getinfo(2, "S"), debug.getinfo(3, "n")
        if info and info.what == "C" and caller and caller.name == "commit" then
          debug.sethook(function() debug.sethook(); error("interrupted!") end, "", 1)
        end
      end
      debug.sethook(arm, "r")
      local ok, err = pcall(m.save, m, P("ctrlc" .. ext))
      debug.sethook()
      assert.is_false(ok)
      assert.matches("interrupted!", err)
      assert.is_nil(err:find("save:", 1, true), err)
      keras.models.load_model(P("ctrlc" .. ext))   -- the save itself completed
    end
  end)
end)
