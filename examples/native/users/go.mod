module example.com/native-users

go 1.24
