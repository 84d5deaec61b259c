package expr_test

import (
	"fmt"

	"github.com/dialoq/dialoq/flows/expr"
)

func Example() {
	relevant, err := expr.Parse("selected(${target_groups}, 'refugees') and ${staff} >= 5")
	if err != nil {
		panic(err)
	}
	fmt.Println(relevant.Refs())

	answers := expr.MapEnv{Values: map[string]string{
		"target_groups": "idps refugees",
		"staff":         "12",
	}}
	fmt.Println(relevant.True(answers))

	// Unanswered fields are empty strings, which compare as NaN.
	fmt.Println(relevant.True(expr.MapEnv{}))

	_, err = expr.Parse("${age} > today()")
	fmt.Println(err)
	// Output:
	// [target_groups staff]
	// true
	// false
	// col 10: function "today" is not supported (the engine has no clock)
}
