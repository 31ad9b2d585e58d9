-- keras.datasets, keras.tensor.load_npz and keras.utils.get_file on small
-- archives in the real formats, written by scripts/fixtures/dataset_fixtures.py
-- with numpy; the expected values (tests/fixtures/datasets.lua and the .npy
-- files in tests/fixtures/datasets/expected) come from its transcription of
-- Keras 2.2.4's load_data functions run with numpy's own random stream.
local keras = require "keras"
local F = dofile("tests/fixtures/datasets.lua")
local D = keras.datasets
local ROOT = assert(os.getenv("PWD"), "PWD is not set")
local DIR = ROOT .. "/tests/fixtures/datasets/"
local EXP = DIR .. "expected/"

local function same_lists(expected, got, what)
  assert.equal(#expected, #got, what .. ": number of sequences")
  for i = 1, #expected do
    assert.same(expected[i], got[i], what .. ": sequence " .. i)
  end
end

local function same_tensor(expected, got, what)
  assert.same(expected.shape, got.shape, what .. ": shape")
  if got:size() > 0 then assert.equal(0, (expected - got):abs():max(), what) end
end

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p " .. d))
  return d
end

local function write(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function raises(pattern, fn)
  local ok, err = pcall(fn)
  assert(not ok, "no error; expected " .. pattern)
  assert(tostring(err):find(pattern, 1, true), "error was: " .. tostring(err))
  return err
end

describe("numpy's random stream", function()
  it("MT19937 seeded with an integer gives numpy's first draws", function()
    local next32 = D._mt19937(113)
    for i, v in ipairs(F.mt_113) do assert.equal(v, next32(), "draw " .. i) end
  end)

  it("shuffles as np.random.shuffle does", function()
    local p = D._shuffled(D._mt19937(113), 1000)
    for i, v in ipairs(F.shuffle_113_1000) do assert.equal(v, p[i], "position " .. i) end
    local q = D._shuffled(D._mt19937(4294967295), 70000)
    for i, v in ipairs(F.shuffle_max_70000) do assert.equal(v, q[70000 - 50 + i], "position " .. i) end
  end)
end)

describe("keras.tensor.load_npz", function()
  it("reads numeric members and object arrays of integer lists (np.savez_compressed)", function()
    local t = keras.tensor.load_npz(DIR .. "imdb.npz")
    same_lists(F.imdb_raw.x_train, t.x_train, "x_train")
    same_lists(F.imdb_raw.x_test, t.x_test, "x_test")
    assert.same(F.imdb_raw.y_train, t.y_train:totable())
    assert.same(F.imdb_raw.y_test, t.y_test:totable())
    assert.equal(1203, #t.x_train[4])   -- more than one APPENDS batch of numpy's pickle
  end)

  it("reads pickles of protocol 2 (Keras's original files)", function()
    local t = keras.tensor.load_npz(DIR .. "imdb_p2.npz")
    same_lists(F.imdb_raw.x_train, t.x_train, "x_train")
    same_lists(F.imdb_raw.x_test, t.x_test, "x_test")
  end)

  it("reads stored members (np.savez) of uint8 and float64", function()
    local t = keras.tensor.load_npz(DIR .. "mnist.npz")
    same_tensor(keras.tensor.load(EXP .. "mnist_x_train.npy"), t.x_train, "x_train")
    local b = keras.tensor.load_npz(DIR .. "boston_housing.npz")
    assert.same({23, 13}, b.x.shape)
  end)

  it("says what is wrong with a file that is missing, not a zip, truncated or corrupt", function()
    raises("load_npz: '/nonexistent/x.npz': cannot open", function() keras.tensor.load_npz("/nonexistent/x.npz") end)
    local d = tmpdir()
    write(d .. "/empty.npz", "")
    raises("is not a valid .npz archive (the file is empty)", function() keras.tensor.load_npz(d .. "/empty.npz") end)
    write(d .. "/text.npz", string.rep("not a zip file ", 10))
    raises("no zip end-of-directory record", function() keras.tensor.load_npz(d .. "/text.npz") end)
    local good = read(DIR .. "imdb.npz")
    write(d .. "/half.npz", good:sub(1, #good // 2))
    raises("is not a valid .npz archive", function() keras.tensor.load_npz(d .. "/half.npz") end)
    -- a flipped byte inside the first member's deflate data
    local bad = good:sub(1, 80) .. string.char(good:byte(81) ~ 0xff) .. good:sub(82)
    write(d .. "/x.npz", bad)
    raises("is not a valid .npz archive", function() keras.tensor.load_npz(d .. "/x.npz") end)
    os.execute("rm -rf " .. d)
  end)

  it("never crashes on any truncation or single-byte damage of an archive", function()
    local d = tmpdir()
    for _, name in ipairs{"imdb_p2.npz", "reuters.npz", "boston_housing.npz"} do
      local good = read(DIR .. name)
      for cut = 0, #good - 1, 7 do
        write(d .. "/t.npz", good:sub(1, cut))
        assert.is_false((pcall(keras.tensor.load_npz, d .. "/t.npz")))
      end
      local fails = 0
      for at = 1, #good, 3 do
        write(d .. "/t.npz", good:sub(1, at - 1) .. string.char(good:byte(at) ~ 0x5a) .. good:sub(at + 1))
        if not pcall(keras.tensor.load_npz, d .. "/t.npz") then fails = fails + 1 end
      end
      assert.is_true(fails > 0)
    end
    os.execute("rm -rf " .. d)
  end)

  it("refuses pickles of anything but lists of integers", function()
    local py = "/usr/bin/python3"
    local d = tmpdir()
    local script = d .. "/w.py"
    write(script, table.concat({
      "import numpy as np, sys",
      "a = np.empty(2, dtype=object); a[0] = [1, 2]; a[1] = 'text'",
      "np.savez(sys.argv[1] + '/str.npz', x=a)",
      "b = np.empty(2, dtype=object); b[0] = [1, 2.5]; b[1] = [3]",
      "np.savez(sys.argv[1] + '/float.npz', x=b)",
      "c = np.empty((1, 1), dtype=object); c[0, 0] = [1]",
      "np.savez(sys.argv[1] + '/twod.npz', x=c)",
    }, "\n"))
    assert(os.execute(py .. " " .. script .. " " .. d))
    raises("unsupported or corrupt pickle", function() keras.tensor.load_npz(d .. "/str.npz") end)
    raises("unsupported or corrupt pickle (opcode", function() keras.tensor.load_npz(d .. "/float.npz") end)
    raises("an object array of shape (1, 1)", function() keras.tensor.load_npz(d .. "/twod.npz") end)
    os.execute("rm -rf " .. d)
  end)

  it("keras.tensor.load refuses an object array and points at load_npz", function()
    local d = tmpdir()
    write(d .. "/w.py", "import numpy as np, sys\na = np.empty(1, dtype=object); a[0] = [1]\n"
      .. "np.save(sys.argv[1] + '/o.npy', a)\n")
    assert(os.execute("/usr/bin/python3 " .. d .. "/w.py " .. d))
    raises("keras.tensor.load_npz reads 1-D object arrays of integer lists", function()
      keras.tensor.load(d .. "/o.npy")
    end)
    os.execute("rm -rf " .. d)
  end)
end)

describe("keras.datasets.imdb", function()
  for _, case in ipairs(F.imdb) do
    local label = next(case.opts) and "" or "defaults"
    for k, v in pairs(case.opts) do label = label .. k .. "=" .. tostring(v) .. " " end
    it("matches Keras 2.2.4 with " .. label, function()
      local o = {DIR .. "imdb.npz"}
      for k, v in pairs(case.opts) do o[k] = v end
      local xa, ya, xb, yb = D.imdb.load_data(o)
      same_lists(case.x_train, xa, "x_train")
      same_lists(case.x_test, xb, "x_test")
      assert.same(case.y_train, #case.y_train > 0 and ya:totable() or {})
      assert.same(case.y_test, #case.y_test > 0 and yb:totable() or {})
    end)
  end

  it("takes Keras's positional order and the old name nb_words", function()
    local a = {D.imdb.load_data(DIR .. "imdb.npz", 30, 5)}
    local b = {D.imdb.load_data{path = DIR .. "imdb.npz", nb_words = 30, skip_top = 5}}
    same_lists(F.imdb[3].x_train, a[1], "positional")
    same_lists(F.imdb[3].x_train, b[1], "nb_words")
  end)

  it("refuses bad options with the option's name", function()
    local p = DIR .. "imdb.npz"
    raises("imdb.load_data: num_words must be an integer >= 0 or nil, got -1",
      function() D.imdb.load_data{p, num_words = -1} end)
    raises("imdb.load_data: seed must be an integer in 0..2^32-1", function() D.imdb.load_data{p, seed = 1.5} end)
    raises("imdb.load_data: maxlen must be an integer", function() D.imdb.load_data{p, maxlen = "ten"} end)
    raises("no sequence was kept. Increase maxlen.", function() D.imdb.load_data{p, maxlen = 1} end)
    raises("imdb.load_data", function() D.imdb.load_data{p, num_word = 3} end)
  end)

  it("says where to put a missing file", function()
    local d = tmpdir()
    raises("get_file: 'imdb.npz' is not in the cache and lkeras does not download: fetch "
      .. "https://s3.amazonaws.com/text-datasets/imdb.npz and save it as " .. d .. "/datasets/imdb.npz", function()
      keras.utils.get_file("imdb.npz", "https://s3.amazonaws.com/text-datasets/imdb.npz", {cache_dir = d})
    end)
    raises("imdb.load_data: '/nonexistent/imdb.npz' is not in the cache", function()
      D.imdb.load_data("/nonexistent/imdb.npz")
    end)
    os.execute("rm -rf " .. d)
  end)

  it("refuses a file whose arrays are not Keras's", function()
    raises("has no array 'x_train'", function() D.imdb.load_data(DIR .. "reuters.npz") end)
    raises("'x' must be an object array of integer lists", function()
      D.reuters.load_data(DIR .. "boston_housing.npz")
    end)
  end)

  it("get_word_index reads the JSON word index", function()
    local w = D.imdb.get_word_index(DIR .. "imdb_word_index.json")
    assert.same({the = 1, ["and"] = 2, a = 3, of = 4, film = 5, ["\u{e9}t\u{e9}"] = 6}, w)
    assert.same(w, D.reuters.get_word_index(DIR .. "reuters_word_index.json"))
    raises("is not a JSON object", function() D.imdb.get_word_index(DIR .. "imdb.npz") end)
  end)
end)

describe("keras.datasets.reuters", function()
  for _, case in ipairs(F.reuters) do
    local label = next(case.opts) and "" or "defaults"
    for k, v in pairs(case.opts) do label = label .. k .. "=" .. tostring(v) .. " " end
    it("matches Keras 2.2.4 with " .. label, function()
      local o = {DIR .. "reuters.npz"}
      for k, v in pairs(case.opts) do o[k] = v end
      local xa, ya, xb, yb = D.reuters.load_data(o)
      same_lists(case.x_train, xa, "x_train")
      same_lists(case.x_test, xb, "x_test")
      assert.same(case.y_train, #case.y_train > 0 and ya:totable() or {})
      assert.same(case.y_test, #case.y_test > 0 and yb:totable() or {})
    end)
  end

  it("refuses a test_split outside [0, 1]", function()
    raises("reuters.load_data: test_split must be a number in [0, 1], got 1.5",
      function() D.reuters.load_data{DIR .. "reuters.npz", test_split = 1.5} end)
  end)
end)

describe("keras.datasets.boston_housing", function()
  for _, case in ipairs(F.boston) do
    it("matches Keras 2.2.4 with " .. (case.opts.seed and "seed 5, test_split 0.3" or "defaults"), function()
      local o = {DIR .. "boston_housing.npz"}
      for k, v in pairs(case.opts) do o[k] = v end
      local xa, ya, xb, yb = D.boston_housing.load_data(o)
      assert.same(case.x_train, xa:totable())
      assert.same(case.y_train, ya:totable())
      assert.same(case.x_test, xb:totable())
      assert.same(case.y_test, yb:totable())
    end)
  end
end)

describe("keras.datasets.mnist", function()
  it("reads mnist.npz", function()
    local t = {D.mnist.load_data(DIR .. "mnist.npz")}
    for i, k in ipairs{"x_train", "y_train", "x_test", "y_test"} do
      same_tensor(keras.tensor.load(EXP .. "mnist_" .. k .. ".npy"), t[i], k)
    end
  end)

  it("names a missing .npz and keeps reading IDX folders", function()
    raises("mnist.load_data: '/nonexistent/mnist.npz' is not in the cache", function()
      D.mnist.load_data("/nonexistent/mnist.npz")
    end)
    raises("mnist.load_data: 'train-images-idx3-ubyte' not found in /nonexistent/mnist", function()
      D.mnist.load_data("/nonexistent/mnist")
    end)
  end)
end)

describe("keras.datasets.cifar10 and cifar100", function()
  it("cifar10 reads the binary batches in order, channels last", function()
    local t = {D.cifar10.load_data(DIR .. "cifar-10-binary.tar.gz")}
    assert.same({10, 32, 32, 3}, t[1].shape)
    assert.same({10, 1}, t[2].shape)
    for i, k in ipairs{"x_train", "y_train", "x_test", "y_test"} do
      same_tensor(keras.tensor.load(EXP .. "cifar10_" .. k .. ".npy"), t[i], k)
    end
  end)

  it("cifar100 gives fine or coarse labels", function()
    for _, mode in ipairs{"fine", "coarse"} do
      local t = {D.cifar100.load_data(mode, DIR .. "cifar-100-binary.tar.gz")}
      same_tensor(keras.tensor.load(EXP .. "cifar100_x_train.npy"), t[1], "x_train")
      same_tensor(keras.tensor.load(EXP .. "cifar100_" .. mode .. "_y_train.npy"), t[2], mode .. " y_train")
      same_tensor(keras.tensor.load(EXP .. "cifar100_x_test.npy"), t[3], "x_test")
      same_tensor(keras.tensor.load(EXP .. "cifar100_" .. mode .. "_y_test.npy"), t[4], mode .. " y_test")
    end
    local a = {D.cifar100.load_data{path = DIR .. "cifar-100-binary.tar.gz"}}
    same_tensor(keras.tensor.load(EXP .. "cifar100_fine_y_train.npy"), a[2], "default label_mode")
    raises('cifar100.load_data: label_mode must be one of "fine" "coarse", got middle', function()
      D.cifar100.load_data("middle", DIR .. "cifar-100-binary.tar.gz")
    end)
  end)

  it("says what is wrong with a truncated, corrupt or foreign archive, never crashing", function()
    local d = tmpdir()
    local good = read(DIR .. "cifar-100-binary.tar.gz")
    raises("cifar100.load_data: cifar: '" .. DIR .. "cifar-10-binary.tar.gz' has no member 'train.bin'", function()
      D.cifar100.load_data("fine", DIR .. "cifar-10-binary.tar.gz")
    end)
    write(d .. "/c.tar.gz", good:sub(1, #good - 40))
    raises("cifar100.load_data: cifar: '" .. d .. "/c.tar.gz'", function()
      D.cifar100.load_data("fine", d .. "/c.tar.gz")
    end)
    for cut = 0, #good - 1, 97 do
      write(d .. "/c.tar.gz", good:sub(1, cut))
      assert.is_false((pcall(D.cifar100.load_data, "fine", d .. "/c.tar.gz")))
    end
    for at = 1, #good, 61 do
      write(d .. "/c.tar.gz", good:sub(1, at - 1) .. string.char(good:byte(at) ~ 0xa5) .. good:sub(at + 1))
      pcall(D.cifar100.load_data, "fine", d .. "/c.tar.gz")   -- an error or (gzip's CRC aside) data; never a crash
    end
    write(d .. "/c.tar.gz", "plain text, not an archive\n")
    raises("cifar100.load_data: cifar:", function() D.cifar100.load_data("fine", d .. "/c.tar.gz") end)
    os.execute("rm -rf " .. d)
  end)
end)

-- a plain tar (gzopen reads it as it is) with each member's header written
-- here: name, size field (given, or the data's length in octal), checksum
local function tar(members)
  local out = {}
  for _, m in ipairs(members) do
    local size = m.size or string.format("%011o", #m.data)
    local h = m.name .. string.rep("\0", 100 - #m.name) .. "0000644\0" .. "0000000\0" .. "0000000\0"
      .. size .. string.rep("\0", 12 - #size) .. "00000000000\0" .. "        " .. "0" .. string.rep("\0", 100)
      .. "ustar  \0"
    h = h .. string.rep("\0", 512 - #h)
    local sum = 0
    for i = 1, 512 do sum = sum + h:byte(i) end
    if m.bad_sum then sum = sum + 1 end
    h = h:sub(1, 148) .. string.format("%06o\0 ", sum) .. h:sub(157)
    out[#out + 1] = h .. m.data .. string.rep("\0", (512 - #m.data % 512) % 512)
  end
  return table.concat(out) .. string.rep("\0", 1024)
end

describe("the CIFAR tar reader", function()
  local function record(coarse, fine, v)
    return string.char(coarse, fine) .. string.rep(string.char(v), 1024) .. string.rep(string.char(v + 1), 1024)
      .. string.rep(string.char(v + 2), 1024)
  end

  it("reads a plain tar whose headers it checks", function()
    local d = tmpdir()
    write(d .. "/c.tar", tar{{name = "cifar-100-binary/train.bin", data = record(3, 71, 10) .. record(4, 9, 20)},
      {name = "cifar-100-binary/test.bin", data = record(5, 6, 30)}})
    local x, y, xt, yt = D.cifar100.load_data("coarse", d .. "/c.tar")
    assert.same({2, 32, 32, 3}, x.shape)
    assert.same({{3}, {4}}, y:totable())
    assert.same({{5}}, yt:totable())
    assert.same({10, 11, 12}, x:totable()[1][32][32])
    assert.same({20, 21, 22}, x:totable()[2][1][7])
    assert.same({30, 31, 32}, xt:totable()[1][5][5])
    os.execute("rm -rf " .. d)
  end)

  it("refuses bad checksums, sizes beyond the data and partial records", function()
    local d = tmpdir()
    local good = {name = "test.bin", data = record(1, 2, 3)}
    local cases = {
      {{name = "train.bin", data = record(1, 2, 3), bad_sum = true}, good, "is not a tar.gz archive (bad tar header)"},
      {{name = "train.bin", data = record(1, 2, 3), size = "77777777777"}, good, "truncated archive"},
      {{name = "train.bin", data = record(1, 2, 3) .. "xy"}, good, "not a whole number of 3074-byte records"},
      {{name = "train.bin", data = record(1, 2, 3), size = "0000000001x"}, good, "bad tar header"},
    }
    for _, c in ipairs(cases) do
      write(d .. "/c.tar", tar{c[1], c[2]})
      raises(c[3], function() D.cifar100.load_data("fine", d .. "/c.tar") end)
    end
    os.execute("rm -rf " .. d)
  end)
end)

describe("keras.utils.get_file", function()
  it("finds a file in cache_dir/cache_subdir", function()
    local d = tmpdir()
    assert(os.execute("mkdir -p " .. d .. "/datasets " .. d .. "/other"))
    write(d .. "/datasets/a.txt", "abc")
    write(d .. "/other/b.txt", "abc")
    assert.equal(d .. "/datasets/a.txt", keras.utils.get_file("a.txt", "http://x/a.txt", {cache_dir = d}))
    assert.equal(d .. "/other/b.txt", keras.utils.get_file{"b.txt", "http://x/b.txt", cache_dir = d,
      cache_subdir = "other"})
    assert.equal(d .. "/other/b.txt", keras.utils.get_file("b.txt", "u", {cache_subdir = d .. "/other"}))
    -- md5("abc")
    assert.equal(d .. "/datasets/a.txt", keras.utils.get_file("a.txt", "u", {cache_dir = d,
      file_hash = "900150983cd24fb0d6963f7d28e17f72"}))
    raises("has md5 900150983cd24fb0d6963f7d28e17f72, expected 00000000000000000000000000000000",
      function() keras.utils.get_file("a.txt", "u", {cache_dir = d, md5_hash = string.rep("0", 32)}) end)
    raises("get_file: sha256 hashes are not checked", function()
      keras.utils.get_file("a.txt", "u", {cache_dir = d, file_hash = string.rep("0", 64)})
    end)
    raises("get_file: untar and extract are not supported", function()
      keras.utils.get_file("a.txt", "u", {cache_dir = d, untar = true})
    end)
    raises("get_file: 'c.txt' is not in the cache and lkeras does not download: fetch http://x/c.txt and save it as "
      .. d .. "/datasets/c.txt", function() keras.utils.get_file("c.txt", "http://x/c.txt", {cache_dir = d}) end)
    raises("get_file: fname must be a non-empty string", function() keras.utils.get_file("", "u") end)
    os.execute("rm -rf " .. d)
  end)

  it("defaults to $LKERAS_HOME, then ~/.lkeras", function()
    local function run(env)
      local p = assert(io.popen("env -u LKERAS_HOME " .. env .. " LUA_CPATH='build/?.so;;' lua5.4 -e "
        .. "'print(select(2, pcall(require(\"keras\").utils.get_file, \"f.npz\", \"http://o/f.npz\")))' 2>&1"))
      local out = p:read("a")
      p:close()
      return out
    end
    assert.truthy(run("LKERAS_HOME=/nowhere/lk"):find("save it as /nowhere/lk/datasets/f.npz", 1, true))
    assert.truthy(run("HOME=/nowhere/home"):find("save it as /nowhere/home/.lkeras/datasets/f.npz", 1, true))
  end)
end)
