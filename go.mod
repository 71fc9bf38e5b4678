module github.com/starttls/starttls

go 1.26.0

require (
	github.com/BurntSushi/toml v1.4.1-0.20240526193622-a339e1f7089c
	golang.org/x/net v0.62.0
)

require golang.org/x/text v0.43.0 // indirect
