local keras = require "keras"

local O = keras.optimizers

-- Keras 2.2.4 get_config of each optimizer built with no arguments
local DEFAULTS = {
  SGD = {lr = 0.01, momentum = 0.0, decay = 0.0, nesterov = false},
  RMSprop = {lr = 0.001, rho = 0.9, decay = 0.0, epsilon = 1e-7},
  Adagrad = {lr = 0.01, decay = 0.0, epsilon = 1e-7},
  Adadelta = {lr = 1.0, rho = 0.95, decay = 0.0, epsilon = 1e-7},
  Adam = {lr = 0.001, beta_1 = 0.9, beta_2 = 0.999, decay = 0.0, epsilon = 1e-7, amsgrad = false},
  Adamax = {lr = 0.002, beta_1 = 0.9, beta_2 = 0.999, decay = 0.0, epsilon = 1e-7},
  Nadam = {lr = 0.002, beta_1 = 0.9, beta_2 = 0.999, epsilon = 1e-7, schedule_decay = 0.004},
}

describe("keras.optimizers", function()
  for class, config in pairs(DEFAULTS) do
    it(class .. " has Keras 2.2.4's defaults in get_config", function()
      local opt = O[class]()
      assert.equal(class, opt.class_name)
      assert.same(config, opt:get_config())
    end)
  end

  it("also builds from an empty table", function()
    assert.same(DEFAULTS.Adam, O.Adam{}:get_config())
  end)

  it("has Keras's lower-case aliases", function()
    assert.equal(O.SGD, O.sgd)
    assert.equal(O.RMSprop, O.rmsprop)
    assert.equal(O.Nadam, O.nadam)
  end)

  describe("call forms", function()
    it("takes one table of options", function()
      local cfg = O.SGD{lr = 0.1, momentum = 0.9, decay = 1e-6, nesterov = true}:get_config()
      assert.same({lr = 0.1, momentum = 0.9, decay = 1e-6, nesterov = true}, cfg)
    end)

    it("takes lr positionally, then an options table", function()
      assert.same({lr = 0.1, momentum = 0.9, decay = 0.0, nesterov = false},
        O.SGD(0.1, {momentum = 0.9}):get_config())
    end)

    it("takes positional values in the table's array part", function()
      assert.same({lr = 0.1, momentum = 0.9, decay = 0.0, nesterov = true},
        O.SGD{0.1, 0.9, nesterov = true}:get_config())
    end)

    it("takes every argument positionally in Keras's order", function()
      assert.same({lr = 0.1, momentum = 0.5, decay = 0.01, nesterov = true},
        O.SGD(0.1, 0.5, 0.01, true):get_config())
      local adam = O.Adam(0.01, 0.8, 0.99, 1e-8, 0.0, true):get_config()
      assert.same({lr = 0.01, beta_1 = 0.8, beta_2 = 0.99, epsilon = 1e-8, decay = 0.0, amsgrad = true}, adam)
    end)

    it("accepts learning_rate as an alias of lr", function()
      assert.equal(0.05, O.RMSprop{learning_rate = 0.05}:get_config().lr)
      assert.equal(0.05, keras.backend.get_value(O.Adam(nil, {learning_rate = 0.05}).lr))
    end)

    it("puts clipnorm and clipvalue in the config only when given", function()
      local cfg = O.SGD{lr = 0.1, clipnorm = 1.0, clipvalue = 0.5}:get_config()
      assert.equal(1.0, cfg.clipnorm)
      assert.equal(0.5, cfg.clipvalue)
      assert.is_nil(O.SGD{}:get_config().clipnorm)
      assert.is_nil(O.SGD{}.clipvalue)
      assert.equal(1.0, O.Adam{clipnorm = 1.0}.clipnorm)
    end)
  end)

  describe("hyperparameters", function()
    it("read through to the C optimizer", function()
      local opt = O.SGD{lr = 0.1, momentum = 0.9}
      assert.equal(0.1, keras.backend.get_value(opt.lr))
      assert.equal(0.1, keras.backend.get_value(opt.learning_rate))
      assert.equal(0.9, keras.backend.get_value(opt.momentum))
      assert.equal(false, opt.nesterov)
      assert.equal(0, opt.iterations)
      assert.equal(0.1, opt._ud:get("lr"))
    end)

    it("write through to the C optimizer", function()
      local opt = O.Adam()
      opt.lr = 0.0005
      assert.equal(0.0005, opt._ud:get("lr"))
      assert.equal(0.0005, keras.backend.get_value(opt.lr))
      assert.equal(0.0005, opt:get_config().lr)
      opt.learning_rate = 0.25
      assert.equal(0.25, opt._ud:get("lr"))
      opt.beta_1 = 0.8
      assert.equal(0.8, opt._ud:get("beta_1"))
      opt.iterations = 7
      assert.equal(7, opt._ud:get("iterations"))
      assert.equal(7, opt.iterations)
    end)

    it("can turn clipping on and off after construction", function()
      local opt = O.SGD()
      opt.clipnorm = 2
      assert.equal(2, opt:get_config().clipnorm)
      assert.equal(2, opt._ud:get("clipnorm"))
      opt.clipnorm = nil
      assert.is_nil(opt:get_config().clipnorm)
      assert.equal(0, opt._ud:get("clipnorm"))
    end)

    it("are nil when the optimizer has no such argument", function()
      local opt = O.SGD()
      assert.is_nil(opt.beta_1)
      assert.is_nil(opt.epsilon)
    end)

    it("keep other fields as plain fields", function()
      local opt = O.SGD()
      opt.note = "mine"
      assert.equal("mine", opt.note)
    end)

    it("print like a Keras constructor call", function()
      assert.equal("SGD(lr=0.01, momentum=0.0, decay=0.0, nesterov=false)", tostring(O.SGD()))
    end)
  end)

  describe("validation", function()
    it("rejects a negative learning rate", function()
      assert.error_matches(function() O.SGD{lr = -1} end,
        "SGD: lr must be a non-negative number, got -1", 1, true)
      assert.error_matches(function() O.Adam(-0.5) end,
        "Adam: lr must be a non-negative number, got -0.5", 1, true)
    end)

    it("rejects an unknown argument", function()
      assert.error_matches(function() O.SGD{momentun = 0.9} end, "SGD: unknown argument 'momentun'", 1, true)
    end)

    it("has no decay for Nadam, as Keras 2.2.4", function()
      assert.error_matches(function() O.Nadam{decay = 0.01} end, "Nadam: unknown argument 'decay'", 1, true)
    end)

    it("rejects a non-number", function()
      assert.error_matches(function() O.RMSprop{rho = "0.9"} end,
        "RMSprop: rho must be a number in [0, 1], got \"0.9\"", 1, true)
      assert.error_matches(function() O.SGD{decay = 0 / 0} end,
        "SGD: decay must be a non-negative number, got", 1, true)
      assert.error_matches(function() O.SGD{lr = math.huge} end,
        "SGD: lr must be a non-negative number, got inf", 1, true)
    end)

    it("rejects an epsilon that is not positive", function()
      assert.error_matches(function() O.Adam{epsilon = 0} end,
        "Adam: epsilon must be a positive number, got 0", 1, true)
    end)

    it("rejects betas outside [0, 1)", function()
      assert.error_matches(function() O.Adam{beta_1 = 1} end,
        "Adam: beta_1 must be a number in [0, 1), got 1", 1, true)
      assert.error_matches(function() O.Adamax{beta_2 = -0.1} end,
        "Adamax: beta_2 must be a number in [0, 1), got -0.1", 1, true)
    end)

    it("rejects a flag that is not a boolean", function()
      assert.error_matches(function() O.SGD{nesterov = 1} end, "SGD: nesterov must be a boolean, got 1", 1, true)
      assert.error_matches(function() O.Adam{amsgrad = "yes"} end,
        "Adam: amsgrad must be a boolean, got \"yes\"", 1, true)
    end)

    it("rejects negative clipping thresholds", function()
      assert.error_matches(function() O.SGD{clipnorm = -1} end,
        "SGD: clipnorm must be a non-negative number, got -1", 1, true)
      assert.error_matches(function() O.SGD{clipvalue = -0.5} end,
        "SGD: clipvalue must be a non-negative number, got -0.5", 1, true)
    end)

    it("rejects an argument given twice", function()
      assert.error_matches(function() O.SGD(0.1, {lr = 0.2}) end,
        "SGD: got multiple values for argument 'lr'", 1, true)
      assert.error_matches(function() O.SGD{lr = 0.1, learning_rate = 0.2} end,
        "SGD: got both lr and learning_rate", 1, true)
    end)

    it("rejects too many positional arguments", function()
      assert.error_matches(function() O.Adagrad(0.1, 1e-7, 0, 5) end,
        "Adagrad: takes at most 3 positional arguments (lr, epsilon, decay), got 4", 1, true)
    end)

    it("rejects an options table that is not last", function()
      assert.error_matches(function() O.SGD({momentum = 0.9}, 0.1) end,
        "SGD: the options table must be the last argument", 1, true)
      assert.error_matches(function() O.SGD(0.1, {0.9}) end,
        "SGD: positional arguments go before the options table", 1, true)
    end)

    it("checks assignments too", function()
      local opt = O.SGD()
      assert.error_matches(function() opt.lr = -1 end, "SGD: lr must be a non-negative number, got -1", 1, true)
      assert.error_matches(function() opt.nesterov = true end,
        "SGD: nesterov is fixed when the optimizer is created", 1, true)
      assert.error_matches(function() opt.iterations = -1 end,
        "SGD: iterations must be an integer >= 0, got -1", 1, true)
      assert.equal(0.01, keras.backend.get_value(opt.lr))
    end)

    it("points the error at the constructor call", function()
      local line
      local ok, err = pcall(function()
        line = debug.getinfo(1, "l").currentline + 1
        local opt = O.SGD{lr = -1}
        return opt
      end)
      assert.is_false(ok)
      assert.truthy(err:find("optimizers_spec.lua:" .. line .. ":", 1, true), err)
    end)
  end)
end)

describe("keras.optimizers.get", function()
  it("builds an optimizer with defaults from a name, in any case", function()
    for _, name in ipairs{"Adam", "adam", "ADAM"} do
      local opt = O.get(name)
      assert.equal("Adam", opt.class_name)
      assert.same(DEFAULTS.Adam, opt:get_config())
    end
    local names = {sgd = "SGD", rmsprop = "RMSprop", adagrad = "Adagrad", adadelta = "Adadelta",
                   adam = "Adam", adamax = "Adamax", nadam = "Nadam"}
    for name, class in pairs(names) do
      assert.equal(class, O.get(name).class_name)
    end
  end)

  it("returns an optimizer object as it is", function()
    local opt = O.SGD{lr = 0.1}
    assert.equal(opt, O.get(opt))
  end)

  it("builds from {class_name =, config =}", function()
    local opt = O.get{class_name = "RMSprop", config = {lr = 0.01, rho = 0.8}}
    assert.equal("RMSprop", opt.class_name)
    assert.same({lr = 0.01, rho = 0.8, decay = 0.0, epsilon = 1e-7}, opt:get_config())
  end)

  it("rejects an unknown name", function()
    assert.error_matches(function() O.get("adamm") end, "unknown optimizer 'adamm'", 1, true)
  end)

  it("rejects what is not an optimizer", function()
    assert.error_matches(function() O.get(3) end, "optimizer must be a name or an optimizer object, got number",
      1, true)
  end)

  it("points the error at the caller's caller (level 3)", function()
    local function compile(o)
      local opt = O.get(o)
      return opt
    end
    local line
    local ok, err = pcall(function()
      line = debug.getinfo(1, "l").currentline + 1
      compile("adamm")
    end)
    assert.is_false(ok)
    assert.truthy(err:find("optimizers_spec.lua:" .. line .. ": unknown optimizer 'adamm'", 1, true), err)
  end)

  it("takes the error level as error() counts it in the function calling get", function()
    local line
    local ok, err = pcall(function()
      line = debug.getinfo(1, "l").currentline + 1
      local opt = O.get("adamm", 1)
      return opt
    end)
    assert.is_false(ok)
    assert.truthy(err:find("optimizers_spec.lua:" .. line .. ": unknown optimizer 'adamm'", 1, true), err)
  end)
end)

describe("keras.optimizers.serialize", function()
  it("round-trips through deserialize", function()
    local opt = O.Adam{lr = 0.01, amsgrad = true, clipnorm = 1}
    local s = O.serialize(opt)
    assert.same({class_name = "Adam", config = {lr = 0.01, beta_1 = 0.9, beta_2 = 0.999, decay = 0.0,
                 epsilon = 1e-7, amsgrad = true, clipnorm = 1}}, s)
    local back = O.deserialize(s)
    assert.same(s, O.serialize(back))
    assert.are_not.equal(opt, back)
  end)

  it("deserialize rejects an unknown class", function()
    assert.error_matches(function() O.deserialize{class_name = "Adamm"} end, "unknown optimizer 'Adamm'", 1, true)
  end)
end)
