module minild.test/oracles

go 1.19
